/**
 * The web console in a real browser: the system Chromium (`apt-get install chromium`), driven by
 * playwright-core, against the embedded stack started as a user starts it. Images go in with the S3
 * SDK, as a user's tool would put them. Every page must load without a console error, an uncaught
 * exception, a failed request or an HTTP error.
 *
 * Screenshots go to test-results/console/ (CONSOLE_SCREENSHOTS=docs/console refreshes the README's).
 */
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { localS3Client } from '../../local/s3-client';
import { loadFashionMnist, pngName, toPng } from '../../scripts/fashion-mnist';
import { type Uploaded, uploadFashion, uploadPhotos } from '../support/console-data';
import { type StackProcess, startStackProcess } from '../support/stack-process';

jest.setTimeout(600_000);

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = resolve(__dirname, '../..', process.env.CONSOLE_SCREENSHOTS ?? 'test-results/console');
const FASHION = 150;
const PHOTOS = 4;
const BROKEN = 'broken/not-an-image.jpg';

let stack: StackProcess;
let s3: S3Client;
let browser: Browser;
let context: BrowserContext;
let fashion: Uploaded[];
const problems: string[] = [];

const api = async <T>(path: string, init?: RequestInit): Promise<T> => (await (await fetch(`${stack.api}${path}`, init)).json()) as T;

/** A page that records every console error, uncaught exception, failed request and HTTP error. */
async function open(path: string, viewport = { width: 1280, height: 800 }): Promise<Page> {
  const page = await context.newPage();
  await page.setViewportSize(viewport);
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()} on ${page.url()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`uncaught on ${page.url()}: ${e.message}`));
  page.on('requestfailed', (r) => {
    // The live gallery replaces its first page while an upload runs; the browser cancels the loads of
    // thumbnails it no longer shows. A cancellation by the page is not a failure; any other is.
    if (r.resourceType() === 'image' && r.failure()?.errorText === 'net::ERR_ABORTED') return;
    problems.push(`request failed: ${r.method()} ${r.url()} ${r.failure()?.errorText}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.request().method()} ${r.url()}`);
  });
  await page.goto(`${stack.api}${path}`);
  return page;
}

/** Every image in the selection has loaded with real pixels. */
async function imagesLoaded(page: Page, selector: string): Promise<number> {
  await page.waitForFunction(
    (sel) => {
      const imgs = [...document.querySelectorAll<HTMLImageElement>(`${sel} img`)];
      return imgs.length > 0 && imgs.every((i) => i.complete && i.naturalWidth > 0);
    },
    selector,
    { timeout: 30_000 },
  );
  return page.locator(`${selector} img`).count();
}

async function shot(page: Page, name: string, fullPage = false): Promise<void> {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage });
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium (or set CHROMIUM_PATH)`);
  mkdirSync(SHOTS, { recursive: true });
  stack = await startStackProcess(mkdtempSync(join(tmpdir(), 'console-')), {
    RETRAIN_MIN_NEW_LABELS: '1000', // runs start from the Models page only
    RETRAIN_INTERVAL_MINUTES: '0',
    TRAIN_MAX_MINUTES: '1',
    LIFECYCLE_INTERVAL_SECONDS: '1',
    TRAINER_BATCH_SIZE: '64',
  });
  s3 = localS3Client(stack.s3);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  context = await browser.newContext();
});

afterAll(async () => {
  await browser?.close();
  s3?.destroy();
  await stack?.stop();
});

afterEach(() => {
  expect(problems.splice(0)).toEqual([]);
});

describe('the web console', () => {
  it('gallery: uploads appear while the counts update live; quarantined images show their reason; pages and filters are bookmarkable', async () => {
    const page = await open('/');
    await page.getByText('No images yet').waitFor();
    const seen = new Set<string>();
    const watching = setInterval(() => {
      void page
        .getByTestId('count-indexed')
        .textContent()
        .then((t) => t && seen.add(t))
        .catch(() => undefined);
    }, 300);
    fashion = await uploadFashion(s3, FASHION);
    await uploadPhotos(s3, PHOTOS);
    await s3.send(new PutObjectCommand({ Bucket: 'images', Key: BROKEN, Body: Buffer.from('not an image at all'), ContentType: 'image/jpeg' }));
    await page
      .getByTestId('count-indexed')
      .filter({ hasText: `${FASHION + PHOTOS} indexed` })
      .waitFor({ timeout: 120_000 });
    await page.getByTestId('count-quarantined').filter({ hasText: '1 quarantined' }).waitFor();
    clearInterval(watching);
    // The header followed the upload: several counts on the way, not just the end.
    expect(seen.size).toBeGreaterThanOrEqual(3);

    // The first page followed too: the newest uploads, thumbnails loaded.
    const broken = page.locator(`[data-testid="gallery-item"][data-key="${BROKEN}"]`);
    await broken.waitFor();
    await expect(broken.getByTestId('image-state').getAttribute('data-state')).resolves.toBe('quarantined');
    await expect(broken.getByTestId('image-state').getAttribute('title')).resolves.toMatch(/quarantined: not a supported image/);
    await expect(broken.textContent()).resolves.toMatch(/not a supported image/);
    await page.locator('[data-testid="gallery-item"][data-key="photos/photo-00.jpg"]').waitFor();
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="gallery-item"]').length === 48);
    expect(await imagesLoaded(page, '[data-testid="gallery-item"]')).toBe(47); // all but the quarantined one
    await shot(page, 'gallery');

    // Next page: new keys, and the URL reloads to the same page.
    const firstKeys = await page.getByTestId('gallery-item').evaluateAll((els) => els.map((e) => e.getAttribute('data-key')));
    await page.getByRole('link', { name: 'Next page' }).click();
    await page.waitForFunction((first) => {
      const keys = [...document.querySelectorAll('[data-testid="gallery-item"]')].map((e) => e.getAttribute('data-key'));
      return keys.length === 48 && !keys.some((k) => first.includes(k));
    }, firstKeys);
    const secondKeys = await page.getByTestId('gallery-item').evaluateAll((els) => els.map((e) => e.getAttribute('data-key')));
    await page.reload();
    await page.waitForFunction((second) => {
      const keys = [...document.querySelectorAll('[data-testid="gallery-item"]')].map((e) => e.getAttribute('data-key'));
      return JSON.stringify(keys) === JSON.stringify(second);
    }, secondKeys);

    // Filters are part of the URL.
    await page.goto(`${stack.api}/#/gallery?state=quarantined`);
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="gallery-item"]').length === 1);
    await page.goto(`${stack.api}/#/gallery?prefix=photos/`);
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid="gallery-item"]').length === n, PHOTOS);
    await page.close();
  });

  it('image: its neighbours load as thumbnails, k is adjustable, and a label set in place is there after a reload', async () => {
    const key = fashion[0]!.key;
    const page = await open(`/#/image?key=${encodeURIComponent(key)}`);
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="neighbor-item"]').length === 10);
    expect(await imagesLoaded(page, '[data-testid="neighbor-item"]')).toBe(10);
    const neighbours = await page.getByTestId('neighbor-item').evaluateAll((els) => els.map((e) => e.getAttribute('data-key')));
    expect(neighbours).not.toContain(key);
    await expect(page.locator('.image-detail img').evaluate((img: HTMLImageElement) => img.naturalWidth)).resolves.toBeGreaterThan(0);

    await page.getByLabel('k', { exact: true }).fill('5');
    await page.getByRole('button', { name: 'Show' }).click();
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="neighbor-item"]').length === 5);
    expect(page.url()).toContain('k=5');

    await page.getByTestId('label-input').fill(fashion[0]!.truth!);
    await page.getByTestId('label-save').click();
    await page
      .getByRole('status')
      .filter({ hasText: `Saved: ${fashion[0]!.truth}` })
      .waitFor();
    await shot(page, 'image');
    await page.reload();
    await page.locator('.image-facts .label').filter({ hasText: fashion[0]!.truth! }).waitFor();
    await expect(page.getByTestId('label-input').inputValue()).resolves.toBe(fashion[0]!.truth);
    expect((await api<{ label?: string }>(`/images?key=${encodeURIComponent(key)}`)).label).toBe(fashion[0]!.truth);
    await page.close();
  });

  it('search: a picked file finds its own image first; a file over the limit is refused with the limit, before any request', async () => {
    const page = await open('/#/search');
    await page.getByText('at most 4 MiB').first().waitFor();
    const fm = loadFashionMnist('t10k', 3);
    await page.getByTestId('search-file-input').setInputFiles({ name: 'query.png', mimeType: 'image/png', buffer: await toPng(fm.images[2]!) });
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="search-result"]').length === 10);
    await expect(page.getByTestId('search-result').first().getAttribute('data-key')).resolves.toBe(`fashion/${pngName('t10k', 2)}`);
    await expect(page.getByTestId('search-result').first().locator('.distance').textContent()).resolves.toBe('0.000');
    expect(await imagesLoaded(page, '[data-testid="search-result"]')).toBe(10);
    await shot(page, 'search');

    // Pasting an image searches too (a ClipboardEvent carrying the file, as a paste of a copied image does).
    const pasted = (await toPng(fm.images[1]!)).toString('base64');
    await page.evaluate((b64) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const data = new DataTransfer();
      data.items.add(new File([bytes], 'pasted.png', { type: 'image/png' }));
      document.dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true }));
    }, pasted);
    await page.waitForFunction(
      (key) => document.querySelector('[data-testid="search-result"]')?.getAttribute('data-key') === key,
      `fashion/${pngName('t10k', 1)}`,
    );

    const searches: string[] = [];
    page.on('request', (r) => r.url().includes('/search') && searches.push(r.url()));
    await page.getByTestId('search-file-input').setInputFiles({ name: 'huge.jpg', mimeType: 'image/jpeg', buffer: Buffer.alloc(5 * 1024 * 1024, 1) });
    await page.getByRole('alert').filter({ hasText: 'huge.jpg is 5.0 MiB; search takes images of at most 4 MiB' }).waitFor();
    expect(searches).toEqual([]);
    await page.close();
  });

  it('label queue: least sure first, labelled from the keyboard alone, counting toward the next run', async () => {
    // Three labels per class through the API, so the queue can rank by neighbour agreement and suggest.
    const perClass = new Map<string, number>();
    const seeds = fashion.filter((f) => {
      const n = perClass.get(f.truth!) ?? 0;
      perClass.set(f.truth!, n + 1);
      return n < 3 && f.key !== fashion[0]!.key;
    });
    await fetch(`${stack.api}/labels`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ labels: seeds.map((f) => ({ key: f.key, label: f.truth })) }),
    });
    const before = await api<{ retrain: { remaining: number }; items: Array<{ key: string; certainty: number }> }>('/label-queue?limit=30');
    expect(before.items.map((i) => i.certainty)).toEqual([...before.items.map((i) => i.certainty)].sort((a, b) => a - b));

    const page = await open('/#/label-queue');
    await page
      .getByTestId('labels-remaining')
      .filter({ hasText: `${before.retrain.remaining} more labels until the next training run` })
      .waitFor();
    const current = page.getByTestId('queue-current');
    await current.waitFor();
    await page.waitForFunction(() => document.activeElement?.getAttribute('data-testid') === 'queue-current');
    const labelled: Array<{ key: string; label: string }> = [];
    const classes = (await page.locator('.classes li').allTextContents()).map((t) => t.replace(/^\d+\s*/, ''));
    // 'take': Enter when the queue suggests a label, else the first class's number key.
    for (const action of ['take', '2', 'take', '3', 'ArrowRight', 'take']) {
      const at = (await current.getAttribute('data-key'))!;
      const suggestion = await current.getAttribute('data-suggestion');
      const key = action === 'take' ? (suggestion ? 'Enter' : '1') : action;
      await page.keyboard.press(key);
      if (key === 'ArrowRight') {
        await page.waitForFunction((k) => document.querySelector('[data-testid="queue-current"]')?.getAttribute('data-key') !== k, at);
        continue;
      }
      const label = key === 'Enter' ? suggestion! : classes[Number(key) - 1]!;
      labelled.push({ key: at, label });
      await page.waitForFunction((k) => document.querySelector('[data-testid="queue-current"]')?.getAttribute('data-key') !== k, at);
    }
    await page
      .getByTestId('labels-remaining')
      .filter({ hasText: `${before.retrain.remaining - 5} more labels` })
      .waitFor();
    for (const { key, label } of labelled) expect((await api<{ label?: string }>(`/images?key=${encodeURIComponent(key)}`)).label).toBe(label);
    await shot(page, 'label-queue');
    await page.close();
  });

  it('models: train now, watch the run and the rollout bar reach 100%, see the curves, roll back after a confirmation', async () => {
    const page = await open('/#/models');
    await expect(page.getByTestId('model-serving-version').textContent()).resolves.toBe('v0');
    await page.getByLabel('Budget (minutes)').fill('0.5');
    await page.getByTestId('train-button').click();
    await page
      .getByRole('status')
      .filter({ hasText: /Started train-/ })
      .waitFor();
    await page.locator('tr[data-state="running"]').waitFor();
    await page.getByTestId('model-serving-version').filter({ hasText: 'v1' }).waitFor({ timeout: 300_000 });
    const bar = page.getByTestId('rollout-progress');
    await page.waitForFunction(
      () => {
        const el = document.querySelector('[data-testid="rollout-progress"]');
        return el?.getAttribute('data-version') === 'v1' && el.getAttribute('aria-valuenow') === '100';
      },
      undefined,
      { timeout: 60_000 },
    );
    await expect(bar.getAttribute('data-state')).resolves.toBe('serving');
    await page.locator('tr[data-state="published"]').waitFor();
    await page.getByRole('button', { name: 'Curves' }).first().click();
    await page.locator('.chart svg polyline').first().waitFor();
    await shot(page, 'models', true);

    // Roll back asks first; confirmed, v0 serves again.
    await page.getByTestId('rollback-button').click();
    await page.getByRole('alertdialog', { name: 'Confirm roll back' }).waitFor();
    await page.getByRole('button', { name: 'Yes, roll back' }).click();
    await page.getByTestId('model-serving-version').filter({ hasText: 'v0' }).waitFor();
    expect((await api<{ serving: { version: string } }>('/models')).serving.version).toBe('v0');
    await page.close();
  });

  it('works on a 390 px phone screen and from the keyboard, with visible focus', async () => {
    const page = await open('/', { width: 390, height: 844 });
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="gallery-item"]').length > 0);
    await imagesLoaded(page, '[data-testid="gallery-item"]');
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    const columns = await page.locator('.grid').evaluate((g) => getComputedStyle(g).gridTemplateColumns.split(' ').length);
    expect(columns).toBe(2);
    await shot(page, 'gallery-phone');

    // Tab from the top reaches the pages' links and then the images; each has a visible focus ring.
    let reachedItem = false;
    for (let i = 0; i < 20 && !reachedItem; i += 1) {
      await page.keyboard.press('Tab');
      const focus = await page.evaluate(() => {
        const el = document.activeElement as HTMLElement;
        return { testid: el.getAttribute('data-testid'), outline: getComputedStyle(el).outlineStyle };
      });
      expect(focus.outline).not.toBe('none');
      reachedItem = focus.testid === 'gallery-item';
    }
    expect(reachedItem).toBe(true);
    await page.keyboard.press('Enter');
    await page.waitForURL(/#\/image\?key=/);
    // Every image has its key as alt text.
    const alts = await page.locator('img').evaluateAll((imgs) => imgs.map((i) => (i as HTMLImageElement).alt));
    expect(alts.every((a) => a.length > 0)).toBe(true);
    await page.close();
  });
});

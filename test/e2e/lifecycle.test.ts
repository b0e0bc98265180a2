/**
 * The self-improving loop on the embedded stack: labels imported with the CLI pass the retrain
 * threshold, training starts by itself, the new version rolls out while a client keeps querying,
 * and afterwards every image is on the new version.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { importLabels } from '../../cli/pipeline';
import { CLASS_NAMES, loadFashionMnist, pngName, toPng } from '../../scripts/fashion-mnist';
import { getJson, startStackProcess, waitFor, type StackProcess } from '../support/stack-process';

const COUNT = 200;

describe('model lifecycle', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'e2e-lifecycle-'));
  let stack: StackProcess;

  afterAll(async () => {
    await stack?.stop();
  });

  it('retrains when enough labels arrive and rolls the new version out without failing a query', async () => {
    stack = await startStackProcess(dataDir, {
      RETRAIN_MIN_NEW_LABELS: '30',
      RETRAIN_INTERVAL_MINUTES: '0',
      TRAIN_MAX_MINUTES: '1',
      LIFECYCLE_INTERVAL_SECONDS: '1',
      // 30 labels hold out 6: too few for the gate's paired test, so its label-free checks decide (the
      // old gate rejected such runs on one image's difference).
      TRAINER_BATCH_SIZE: '64',
    });
    const fm = loadFashionMnist('t10k', COUNT);
    const keys = fm.images.map((_, i) => `fm/${pngName('t10k', i)}`);
    const s3 = new S3Client({ endpoint: stack.s3, forcePathStyle: true, region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
    for (let i = 0; i < COUNT; i += 25) {
      await Promise.all(
        keys.slice(i, i + 25).map(async (Key, j) => s3.send(new PutObjectCommand({ Bucket: 'images', Key, Body: await toPng(fm.images[i + j]!) }))),
      );
    }
    s3.destroy();
    await waitFor('all indexed', async () => ((await getJson<{ indexed: number }>(`${stack.api}/health`)).body.indexed === COUNT ? true : undefined), 120_000);

    // Three labels per class, through the CLI's CSV import; one unknown key is reported, not fatal.
    const perClass = new Map<number, number>();
    const rows = ['key,label'];
    keys.forEach((key, i) => {
      const c = fm.labels[i]!;
      if ((perClass.get(c) ?? 0) >= 3) return;
      perClass.set(c, (perClass.get(c) ?? 0) + 1);
      rows.push(`${key},${CLASS_NAMES[c]}`);
    });
    rows.push('fm/does-not-exist.png,shirt');
    const csv = join(dataDir, 'labels.csv');
    writeFileSync(csv, `${rows.join('\n')}\n`);
    const imported = await importLabels(stack.api, csv);
    expect(imported).toEqual({ imported: 30, unknown: ['fm/does-not-exist.png'], invalid: [] });

    // A client keeps querying during training and rollout: no failures, never a mixed answer.
    let queries = 0;
    const failures: string[] = [];
    const versionsSeen = new Set<string>();
    let querying = true;
    const client = (async () => {
      while (querying) {
        const key = keys[queries % COUNT]!;
        const res = await fetch(`${stack.api}/neighbors?key=${encodeURIComponent(key)}&k=5`);
        const body = (await res.json()) as { query?: { modelVersion: string }; neighbors?: Array<{ key: string }> };
        queries += 1;
        if (res.status !== 200 || body.neighbors?.length !== 5) failures.push(`${res.status} ${JSON.stringify(body).slice(0, 200)}`);
        else versionsSeen.add(body.query!.modelVersion);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();

    const models = await waitFor(
      'v1 serving',
      async () => {
        const m = (await getJson<{ serving: { version: string }; runs: Array<{ state: string; error?: string }> }>(`${stack.api}/models`)).body;
        const failed = m.runs.find((r) => r.state === 'failed' || r.state === 'rejected');
        if (failed) throw new Error(`training did not publish: ${JSON.stringify(failed)}\n${stack.output()}`);
        return m.serving.version === 'v1' ? m : undefined;
      },
      300_000,
      1000,
    );
    querying = false;
    await client;

    expect(failures).toEqual([]);
    expect(queries).toBeGreaterThan(20);
    expect([...versionsSeen].sort()).toEqual(['v0', 'v1']);
    // biome-ignore lint/suspicious/noExplicitAny: the GET /models JSON, read field by field below.
    const view = (await getJson<any>(`${stack.api}/models`)).body;
    expect(view.runs[0]).toMatchObject({ state: 'published', version: 'v1' });
    expect(view.history[0]).toMatchObject({
      version: 'v1',
      parent: 'v0',
      gate: { passed: true, rule: 'label-free: too few held-out labels' },
      rollout: { state: 'serving' },
    });
    expect(view.history[0].metrics).toHaveProperty('knnAccuracy');
    expect(models.serving.version).toBe('v1');
    for (const key of keys) {
      expect((await getJson<{ modelVersion: string }>(`${stack.api}/images?key=${encodeURIComponent(key)}`)).body.modelVersion).toBe('v1');
    }
  }, 420_000);
});

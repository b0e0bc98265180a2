import sharp from 'sharp';
import { artifactKeys } from '../../../../shared/artifact-keys';
import { BadRequestError, NotFoundError } from '../../../../shared/errors';
import { imageIdForKey } from '../../../../shared/ids';
import { augmentImage } from '../../../../shared/use-cases/augment-image';
import { catalogRank, listImages, recordUpload, SCAN_LIMIT } from '../../../../shared/use-cases/catalog';
import { embedImage } from '../../../../shared/use-cases/embed-image';
import { labelQueue } from '../../../../shared/use-cases/label-queue';
import { putLabels } from '../../../../shared/use-cases/labels';
import { thumbnailOf } from '../../../../shared/use-cases/thumbnails';
import { gradientImage } from '../../../support/images';
import { ARTIFACTS, fakePipeline, IMAGES, type FakePipeline } from '../../../support/pipeline';

let sequence = 0;
/** Uploads `key` and runs augment (and embed, unless `embed` is false) on it, as the pipeline would. */
async function ingest(p: FakePipeline, key: string, { embed = true, bytes }: { embed?: boolean; bytes?: Buffer } = {}): Promise<void> {
  await p.store.put(IMAGES, key, bytes ?? (await gradientImage(40 + (sequence % 7), 30)));
  sequence += 1;
  const before = p.embedQueue.sent.length;
  await augmentImage(p, { kind: 'created', bucket: IMAGES, key, sequencer: sequence.toString(16).padStart(4, '0') });
  if (embed) for (const m of p.embedQueue.messages<{ key: string; imageId: string; sequencer: string }>().slice(before)) await embedImage(p, m);
}

const keys = (items: Array<{ key: string }>) => items.map((i) => i.key);

describe('listImages (GET /images without a key)', () => {
  let p: FakePipeline;
  beforeEach(async () => {
    p = await fakePipeline();
  });

  it('lists uploads newest first with their state, labels and whether a thumbnail exists', async () => {
    await ingest(p, 'a.png');
    await ingest(p, 'b.png', { embed: false });
    await ingest(p, 'c.txt', { bytes: Buffer.from('not an image') });
    await putLabels(p, [{ key: 'a.png', label: 'cat' }]);
    const { items, cursor } = await listImages(p, { limit: 10 });
    expect(cursor).toBeUndefined();
    expect(items.map(({ key, state, label, thumbnail }) => ({ key, state, label, thumbnail }))).toEqual([
      { key: 'c.txt', state: 'quarantined', label: undefined, thumbnail: false },
      { key: 'b.png', state: 'pending', label: undefined, thumbnail: true },
      { key: 'a.png', state: 'indexed', label: 'cat', thumbnail: true },
    ]);
    expect(items[0]!.reason).toMatch(/not a supported image/);
    expect(items[2]).toMatchObject({ modelVersion: 'v0', size: expect.any(Number), uploadedAt: expect.stringMatching(/^\d{4}-/) });
  });

  it('pages with a cursor that neither repeats nor skips while new uploads arrive', async () => {
    for (let i = 0; i < 7; i += 1) await ingest(p, `img-${i}.png`, { embed: false });
    const first = await listImages(p, { limit: 3 });
    expect(keys(first.items)).toEqual(['img-6.png', 'img-5.png', 'img-4.png']);
    await ingest(p, 'late.png', { embed: false });
    const second = await listImages(p, { limit: 3, cursor: first.cursor! });
    expect(keys(second.items)).toEqual(['img-3.png', 'img-2.png', 'img-1.png']);
    const third = await listImages(p, { limit: 3, cursor: second.cursor! });
    expect(keys(third.items)).toEqual(['img-0.png']);
    expect(third.cursor).toBeUndefined();
    // The new upload is on a fresh first page.
    expect(keys((await listImages(p, { limit: 1 })).items)).toEqual(['late.png']);
  });

  it('shows a re-uploaded key once, as its newest upload, and drops deleted images; stale entries are removed', async () => {
    await ingest(p, 'a.png');
    await ingest(p, 'b.png');
    await ingest(p, 'a.png', { bytes: await gradientImage(64, 64) });
    await p.store.delete(IMAGES, 'b.png');
    expect(p.store.keys(ARTIFACTS).filter((k) => k.startsWith('catalog/'))).toHaveLength(3);
    const { items } = await listImages(p, { limit: 10 });
    expect(keys(items)).toEqual(['a.png']);
    expect(items[0]!.size).toBe((await p.store.head(IMAGES, 'a.png'))!.size);
    expect(p.store.keys(ARTIFACTS).filter((k) => k.startsWith('catalog/'))).toHaveLength(1);
  });

  it('filters by state, by label or pseudo-label, and by key prefix', async () => {
    await ingest(p, 'cats/1.png');
    await ingest(p, 'dogs/1.png');
    await ingest(p, 'cats/2.png', { embed: false });
    await putLabels(p, [{ key: 'dogs/1.png', label: 'dog' }]);
    expect(keys((await listImages(p, { limit: 10, state: 'indexed' })).items)).toEqual(['dogs/1.png', 'cats/1.png']);
    expect(keys((await listImages(p, { limit: 10, state: 'pending' })).items)).toEqual(['cats/2.png']);
    expect(keys((await listImages(p, { limit: 10, label: 'dog' })).items)).toEqual(['dogs/1.png']);
    expect(keys((await listImages(p, { limit: 10, prefix: 'cats/' })).items)).toEqual(['cats/2.png', 'cats/1.png']);
  });

  it('scans at most SCAN_LIMIT entries per request: a filtered page can be short and still have a cursor', async () => {
    // Catalog entries written directly (augment would write the same): SCAN_LIMIT + 50 pending images, one quarantined oldest.
    await p.store.put(IMAGES, 'old.bin', Buffer.from('x'));
    await recordUpload(p, imageIdForKey('old.bin'), 'old.bin', (await p.store.head(IMAGES, 'old.bin'))!, new Date());
    await p.store.put(
      ARTIFACTS,
      artifactKeys.quarantine(imageIdForKey('old.bin')),
      JSON.stringify({ key: 'old.bin', reason: 'r', at: new Date().toISOString() }),
    );
    for (let i = 0; i < SCAN_LIMIT + 50; i += 1) {
      const key = `p-${i}.png`;
      await p.store.put(IMAGES, key, Buffer.from(key));
      await recordUpload(p, imageIdForKey(key), key, (await p.store.head(IMAGES, key))!, new Date());
    }
    const first = await listImages(p, { limit: 10, state: 'quarantined' });
    expect(first.items).toEqual([]);
    expect(first.cursor).toBeDefined();
    const second = await listImages(p, { limit: 10, state: 'quarantined', cursor: first.cursor! });
    expect(keys(second.items)).toEqual(['old.bin']);
    expect(second.cursor).toBeUndefined();
  });

  it('refuses a cursor it did not make', async () => {
    await expect(listImages(p, { limit: 5, cursor: 'bm90LWEtY3Vyc29y' })).rejects.toThrow(BadRequestError);
  });

  it('ranks later uploads first, and two uploads in one second by their ETags', () => {
    const t = new Date('2026-11-28T12:00:00Z');
    expect(catalogRank(new Date(t.getTime() + 1000), 'ab') < catalogRank(t, 'ab')).toBe(true);
    expect(catalogRank(t, '"0123456789abcdef"')).not.toBe(catalogRank(t, '"fedcba9876543210"'));
  });
});

describe('thumbnailOf (GET /thumbnails)', () => {
  let p: FakePipeline;
  beforeEach(async () => {
    p = await fakePipeline();
  });

  it('is a WebP of at most 256 px made at ingest, never enlarged, with a stable ETag', async () => {
    await ingest(p, 'big.png', { bytes: await gradientImage(1200, 600) });
    await ingest(p, 'small.png', { bytes: await gradientImage(28, 28) });
    const big = await thumbnailOf(p, 'big.png');
    expect(await sharp(big.webp).metadata()).toMatchObject({ format: 'webp', width: 256, height: 128 });
    expect(big.webp.equals((await p.store.get(IMAGES, 'big.png'))!)).toBe(false);
    expect((await thumbnailOf(p, 'big.png')).etag).toBe(big.etag);
    expect(await sharp((await thumbnailOf(p, 'small.png')).webp).metadata()).toMatchObject({ width: 28, height: 28 });
    expect(p.store.json(ARTIFACTS, artifactKeys.derivedMeta(imageIdForKey('big.png')))).toMatchObject({
      thumbnail: { file: 'thumb.webp', width: 256, height: 128 },
    });
  });

  it('answers 404 for an unknown key and for a quarantined image, saying which', async () => {
    await expect(thumbnailOf(p, 'nope.png')).rejects.toThrow(new NotFoundError('no image with key "nope.png"'));
    await ingest(p, 'bad.png', { bytes: Buffer.from('garbage') });
    await expect(thumbnailOf(p, 'bad.png')).rejects.toThrow(/has no thumbnail: it is quarantined/);
  });

  it('goes away with its image', async () => {
    await ingest(p, 'a.png');
    await p.store.delete(IMAGES, 'a.png');
    await augmentImage(p, { kind: 'removed', bucket: IMAGES, key: 'a.png', sequencer: 'ffff' });
    expect(await p.store.get(ARTIFACTS, artifactKeys.derivedThumbnail(imageIdForKey('a.png')))).toBeUndefined();
  });
});

describe('labelQueue (GET /label-queue)', () => {
  let p: FakePipeline;
  beforeEach(async () => {
    p = await fakePipeline();
  });

  /** Two tight clusters of images (red, blue) and one halfway between them. */
  async function clusters(): Promise<void> {
    const solid = (r: number, g: number, b: number) =>
      sharp({ create: { width: 20, height: 20, channels: 3, background: { r, g, b } } })
        .png()
        .toBuffer();
    for (let i = 0; i < 6; i += 1) await ingest(p, `red-${i}.png`, { bytes: await solid(250 - i * 3, 10, 10) });
    for (let i = 0; i < 6; i += 1) await ingest(p, `blue-${i}.png`, { bytes: await solid(10, 10, 250 - i * 3) });
    await ingest(p, 'purple.png', { bytes: await solid(130, 10, 130) });
  }

  it('puts the image between two classes first and suggests labels from its neighbours', async () => {
    await clusters();
    await putLabels(
      p,
      [0, 1, 2, 3].flatMap((i) => [
        { key: `red-${i}.png`, label: 'red' },
        { key: `blue-${i}.png`, label: 'blue' },
      ]),
    );
    const queue = await labelQueue(p, 5);
    expect(queue.items[0]!.key).toBe('purple.png');
    expect(queue.items[0]!.certainty).toBeLessThan(queue.items[1]!.certainty);
    expect(queue.items.map((i) => i.key)).not.toContain('red-0.png'); // labelled images are not queued
    const red = queue.items.find((i) => i.key === 'red-5.png');
    if (red) expect(red.suggestion).toBe('red');
    expect(queue.classes).toEqual(['blue', 'red']);
    expect(queue.modelVersion).toBe('v0');
  });

  it('says how many labels remain until the label trigger starts a run', async () => {
    await clusters();
    p.settings.retrain = { ...p.settings.retrain, minNewLabels: 5 };
    await putLabels(p, [
      { key: 'red-0.png', label: 'red' },
      { key: 'blue-0.png', label: 'blue' },
    ]);
    expect((await labelQueue(p, 3)).retrain).toEqual({ minNewLabels: 5, labelsSinceLastRun: 2, remaining: 3 });
    p.settings.retrain = { ...p.settings.retrain, minNewLabels: 0 };
    expect((await labelQueue(p, 3)).retrain).toEqual({ minNewLabels: 0, labelsSinceLastRun: 0, remaining: null });
  });
});

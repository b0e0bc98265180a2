import { artifactKeys } from '../../../../shared/artifact-keys';
import { decodeCanonical } from '../../../../shared/derived-layout';
import { imageIdForKey } from '../../../../shared/ids';
import { encodeNpyU8 } from '../../../../shared/image/npy';
import type { DerivedMeta } from '../../../../shared/schemas';
import { augmentImage } from '../../../../shared/use-cases/augment-image';
import { isMigrated, migrationTick, needsRederive } from '../../../../shared/use-cases/derived-migration';
import { migrateDerived } from '../../../../shared/use-cases/migrate-derived';
import { gradientImage } from '../../../support/images';
import { ARTIFACTS, fakePipeline, IMAGES, type FakePipeline } from '../../../support/pipeline';

/** What the version before working resolution wrote for an image: views.npy at the model's 16x16 input, meta schemaVersion 1. */
async function writeLayout1(p: FakePipeline, key: string, source: { width: number; height: number }): Promise<string> {
  const id = imageIdForKey(key);
  await p.store.put(ARTIFACTS, artifactKeys.derivedViewsV1(id), encodeNpyU8([3, 16, 16, 3], new Uint8Array(3 * 16 * 16 * 3).fill(7)));
  const meta = {
    schemaVersion: 1,
    key,
    imageId: id,
    etag: 'old',
    sequencer: '01',
    source: { ...source, format: 'png', bytes: 100 },
    file: 'views.npy',
    shape: [3, 16, 16, 3],
    views: 2,
    createdAt: '2026-11-01T00:00:00.000Z',
  };
  await p.store.put(ARTIFACTS, artifactKeys.derivedMeta(id), JSON.stringify(meta));
  return id;
}

describe('migrating derived images to the working resolution', () => {
  let p: FakePipeline;
  beforeEach(async () => {
    p = await fakePipeline();
  });

  it('re-derives layout-1 images from their originals, keeps their labels, re-embeds them, and records the layout', async () => {
    const keys = ['a.png', 'b.png', 'c.png'];
    for (const key of keys) {
      await p.store.put(IMAGES, key, await gradientImage(600, 400));
      await writeLayout1(p, key, { width: 600, height: 400 });
    }
    await p.store.put(ARTIFACTS, artifactKeys.label(imageIdForKey('b.png')), JSON.stringify({ key: 'b.png', label: 'shoe', at: '2026-11-01T00:00:00.000Z' }));
    const lines: string[] = [];
    const result = await migrateDerived(p, { onProgress: (x) => lines.push(`${x.done}/${x.total}`) });
    expect(result).toMatchObject({ scanned: 3, total: 3, done: 3, failed: 0, outcomes: { augmented: 3 } });
    expect(lines).toEqual(['0/3', '1/3', '2/3', '3/3']);
    for (const key of keys) {
      const id = imageIdForKey(key);
      expect(p.store.json(ARTIFACTS, artifactKeys.derivedMeta(id))).toMatchObject({ schemaVersion: 2, canonical: { width: 384, height: 256 } });
      const canonical = await decodeCanonical((await p.store.get(ARTIFACTS, artifactKeys.derivedCanonical(id)))!);
      expect([canonical.width, canonical.height]).toEqual([384, 256]);
      expect(await p.store.get(ARTIFACTS, artifactKeys.derivedViewsV1(id))).toBeUndefined();
    }
    expect(p.store.json(ARTIFACTS, artifactKeys.label(imageIdForKey('b.png')))).toMatchObject({ label: 'shoe' });
    expect(
      p.embedQueue
        .messages()
        .map((m) => (m as { key: string }).key)
        .sort(),
    ).toEqual(keys);
    expect(await isMigrated(p, p.settings.derived)).toBe(true);
    expect(await isMigrated(p, { workingSize: 512, viewSize: 224 })).toBe(false);
  });

  it('resumes: a stopped pass leaves the rest for the next, which skips what is done', async () => {
    for (const key of ['a.png', 'b.png', 'c.png', 'd.png']) {
      await p.store.put(IMAGES, key, await gradientImage(300, 300));
      await writeLayout1(p, key, { width: 300, height: 300 });
    }
    let taken = 0;
    const first = await migrateDerived(p, { concurrency: 1, shouldStop: () => taken++ >= 2 });
    expect(first).toMatchObject({ total: 4, done: 2 });
    expect(await isMigrated(p, p.settings.derived)).toBe(false);
    const second = await migrateDerived(p);
    expect(second).toMatchObject({ scanned: 4, total: 2, done: 2 });
    expect(await isMigrated(p, p.settings.derived)).toBe(true);
  });

  it('removes what an original deleted since leaves behind, and leaves images already at the working resolution alone', async () => {
    const gone = await writeLayout1(p, 'gone.png', { width: 500, height: 500 });
    await p.store.put(IMAGES, 'new.png', await gradientImage(500, 500));
    await augmentImage(p, { kind: 'created', bucket: IMAGES, key: 'new.png', sequencer: '01' });
    const before = await p.store.head(ARTIFACTS, artifactKeys.derivedCanonical(imageIdForKey('new.png')));
    const result = await migrateDerived(p);
    expect(result).toMatchObject({ scanned: 2, total: 1, outcomes: { stale: 1 } });
    expect(await p.store.get(ARTIFACTS, artifactKeys.derivedMeta(gone))).toBeUndefined();
    expect(await p.store.get(ARTIFACTS, artifactKeys.derivedViewsV1(gone))).toBeUndefined();
    expect((await p.store.head(ARTIFACTS, artifactKeys.derivedCanonical(imageIdForKey('new.png'))))?.etag).toBe(before?.etag);
  });

  it('re-derives layout-2 images only when a larger working size would store more of their original', () => {
    const meta = (working: number, canonical: [number, number], source: [number, number]): DerivedMeta => ({
      schemaVersion: 2,
      key: 'k',
      imageId: 'a'.repeat(32),
      etag: 'e',
      sequencer: '01',
      source: { width: source[0], height: source[1], format: 'jpeg', bytes: 1 },
      working: { size: working, viewSize: Math.min(working, 224) },
      canonical: { file: 'canonical.png', width: canonical[0], height: canonical[1] },
      views: { file: 'views.jpg', count: 2, size: Math.min(224, ...canonical), stride: 224 },
      thumbnail: { file: 'thumb.webp', width: canonical[0], height: canonical[1] },
      createdAt: '2026-11-28T00:00:00.000Z',
    });
    const sizes = { workingSize: 512, viewSize: 224 };
    expect(needsRederive(meta(256, [384, 256], [1200, 800]), sizes)).toBe(true);
    expect(needsRederive(meta(256, [28, 28], [28, 28]), sizes)).toBe(false); // nothing more to store
    expect(needsRederive(meta(512, [768, 512], [1200, 800]), sizes)).toBe(false);
    expect(needsRederive(meta(256, [384, 256], [1200, 800]), { workingSize: 256, viewSize: 224 })).toBe(false);
    // Made before thumbnails existed: re-derived once, whatever its sizes.
    const withoutThumbnail = { ...meta(256, [28, 28], [28, 28]), thumbnail: undefined } as DerivedMeta;
    expect(needsRederive(withoutThumbnail, { workingSize: 256, viewSize: 224 })).toBe(true);
  });
});

describe('the AWS migration pass (a page per lifecycle tick)', () => {
  it('hands every image below the working resolution to augment through the ingest queue, resumably, then records the layout', async () => {
    const p = await fakePipeline();
    for (const key of ['a.png', 'b.png', 'c.png']) {
      await p.store.put(IMAGES, key, await gradientImage(600, 400));
      await writeLayout1(p, key, { width: 600, height: 400 });
    }
    await p.store.put(IMAGES, 'new.png', await gradientImage(600, 400));
    await augmentImage(p, { kind: 'created', bucket: IMAGES, key: 'new.png', sequencer: '01' });
    const deps = { ...p, ingestQueue: p.ingestQueue, sizes: p.settings.derived };

    const first = await migrationTick(deps, 2);
    expect(first).toEqual({ state: 'migrating', scanned: 2, enqueued: expect.any(Number) });
    const second = await migrationTick(deps, 2);
    expect(second).toEqual({ state: 'done' });
    const events = (p.ingestQueue.sent as string[]).map((b) => JSON.parse(b).Records[0].s3.object as { key: string; sequencer: string });
    expect(events.map((e) => e.key).sort()).toEqual(['a.png', 'b.png', 'c.png']);
    expect(events.every((e) => e.sequencer.startsWith('migrate-'))).toBe(true);
    expect(await isMigrated(p, p.settings.derived)).toBe(true);
    expect(await p.store.get(ARTIFACTS, artifactKeys.derivedMigration)).toBeUndefined();
    expect(await migrationTick(deps, 2)).toEqual({ state: 'done' });

    // augment handles such an event like an upload, and removes layout 1's file.
    const id = imageIdForKey('a.png');
    expect(await augmentImage(p, { kind: 'created', bucket: IMAGES, key: 'a.png', sequencer: events[0]!.sequencer.replace(/-.*/, `-${id}`) })).toBe(
      'augmented',
    );
    expect(p.store.json(ARTIFACTS, artifactKeys.derivedMeta(id))).toMatchObject({ schemaVersion: 2 });
    expect(await p.store.get(ARTIFACTS, artifactKeys.derivedViewsV1(id))).toBeUndefined();
  });
});

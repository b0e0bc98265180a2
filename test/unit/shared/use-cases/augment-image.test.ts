import { artifactKeys } from '../../../../shared/artifact-keys';
import { imageIdForKey } from '../../../../shared/ids';
import sharp from 'sharp';
import { decodeCanonical, toWorkingImage, unpackViews } from '../../../../shared/derived-layout';
import { decodeImage } from '../../../../shared/image/decode';
import { augmentImage } from '../../../../shared/use-cases/augment-image';
import { embedImage } from '../../../../shared/use-cases/embed-image';
import { fakePipeline, IMAGES, ARTIFACTS, type FakePipeline } from '../../../support/pipeline';
import { gradientImage } from '../../../support/images';

const created = (key: string) => ({ kind: 'created' as const, bucket: IMAGES, key, sequencer: '01' });
const removed = (key: string) => ({ kind: 'removed' as const, bucket: IMAGES, key, sequencer: '02' });

describe('augmentImage', () => {
  let p: FakePipeline;
  beforeEach(async () => {
    p = await fakePipeline();
  });

  it('writes the canonical image at the working resolution and K views, then the meta, then queues the embed', async () => {
    await p.store.put(IMAGES, 'photos/a b+c.png', await gradientImage(640, 480));
    expect(await augmentImage(p, created('photos/a b+c.png'))).toBe('augmented');
    const id = imageIdForKey('photos/a b+c.png');
    // Shorter side at WORKING_SIZE (256), aspect kept, lossless.
    const canonical = await decodeCanonical((await p.store.get(ARTIFACTS, artifactKeys.derivedCanonical(id)))!);
    expect([canonical.width, canonical.height]).toEqual([341, 256]);
    const direct = await toWorkingImage(await decodeImage(await gradientImage(640, 480), { maxPixels: 1e8 }), 256);
    expect(canonical.rgb.equals(direct.rgb)).toBe(true);
    // Two 224 px views side by side, each at a multiple of 16.
    const strip = await sharp((await p.store.get(ARTIFACTS, artifactKeys.derivedViews(id)))!).metadata();
    expect([strip.width, strip.height, strip.format]).toEqual([2 * 224, 224, 'jpeg']);
    expect(p.store.json(ARTIFACTS, artifactKeys.derivedMeta(id))).toMatchObject({
      schemaVersion: 2,
      key: 'photos/a b+c.png',
      imageId: id,
      working: { size: 256, viewSize: 224 },
      canonical: { file: 'canonical.png', width: 341, height: 256 },
      views: { file: 'views.jpg', count: 2, size: 224, stride: 224 },
      source: { width: 640, height: 480, format: 'png' },
    });
    expect(p.embedQueue.messages()).toEqual([{ key: 'photos/a b+c.png', imageId: id, sequencer: '01' }]);
  });

  it('never enlarges: a small image keeps its size, and its views are no larger than its shorter side', async () => {
    await p.store.put(IMAGES, 'small.png', await gradientImage(40, 30));
    await augmentImage(p, created('small.png'));
    const id = imageIdForKey('small.png');
    expect(p.store.json(ARTIFACTS, artifactKeys.derivedMeta(id))).toMatchObject({
      canonical: { width: 40, height: 30 },
      views: { count: 2, size: 30, stride: 32 },
    });
    const views = await unpackViews((await p.store.get(ARTIFACTS, artifactKeys.derivedViews(id)))!, 2, 30);
    expect(views.map((v) => v.length)).toEqual([30 * 30 * 3, 30 * 30 * 3]);
  });

  it('loads no encoder: it reads only which model serves and its input spec', async () => {
    await p.store.put(IMAGES, 'cat.png', await gradientImage(40, 30));
    expect(await augmentImage(p, { kind: 'created', bucket: IMAGES, key: 'cat.png', sequencer: '01' })).toBe('augmented');
    expect(p.encoders.created).toBe(0);
  });

  it('is idempotent: a duplicate event writes byte-identical views', async () => {
    await p.store.put(IMAGES, 'a.png', await gradientImage(40, 30));
    await augmentImage(p, created('a.png'));
    const first = await p.store.get(ARTIFACTS, artifactKeys.derivedViews(imageIdForKey('a.png')));
    await augmentImage(p, created('a.png'));
    expect(await p.store.get(ARTIFACTS, artifactKeys.derivedViews(imageIdForKey('a.png')))).toEqual(first);
  });

  it('quarantines input that can never succeed with a reason, and acknowledges it', async () => {
    await p.store.put(IMAGES, 'notes.txt', 'just text');
    expect(await augmentImage(p, created('notes.txt'))).toBe('quarantined');
    expect(p.store.json(ARTIFACTS, artifactKeys.quarantine(imageIdForKey('notes.txt')))).toMatchObject({
      key: 'notes.txt',
      reason: expect.stringMatching(/not a supported image/),
    });
    expect(p.embedQueue.sent).toHaveLength(0);
  });

  it('quarantines objects over the size limit without reading them', async () => {
    await p.store.put(IMAGES, 'big.png', Buffer.alloc(2_000_000));
    expect(await augmentImage(p, created('big.png'))).toBe('quarantined');
    expect(p.store.json(ARTIFACTS, artifactKeys.quarantine(imageIdForKey('big.png')))).toMatchObject({
      reason: 'object is 2000000 bytes; the limit is 1000000',
    });
  });

  it('a broken re-upload replaces the good image: its vector and views go away', async () => {
    await p.store.put(IMAGES, 'a.png', await gradientImage(40, 30));
    await augmentImage(p, created('a.png'));
    await embedImage(p, p.embedQueue.messages<{ key: string; imageId: string; sequencer: string }>()[0]!);
    await p.store.put(IMAGES, 'a.png', 'corrupt');
    expect(await augmentImage(p, created('a.png'))).toBe('quarantined');
    const index = (await p.vectorStore.openIndex('emb-v0'))!;
    expect(await index.count()).toBe(0);
    expect(await p.store.get(ARTIFACTS, artifactKeys.derivedViews(imageIdForKey('a.png')))).toBeUndefined();
  });

  it('on removal deletes the vector and every derived artifact; a stale removal of an existing key does nothing', async () => {
    await p.store.put(IMAGES, 'a.png', await gradientImage(40, 30));
    await augmentImage(p, created('a.png'));
    await embedImage(p, p.embedQueue.messages<{ key: string; imageId: string; sequencer: string }>()[0]!);
    expect(await augmentImage(p, removed('a.png'))).toBe('stale');
    await p.store.delete(IMAGES, 'a.png');
    expect(await augmentImage(p, removed('a.png'))).toBe('deleted');
    // Only the tombstone stays, and the upload's catalog entry (GET /images finds it stale and removes it).
    const id = imageIdForKey('a.png');
    expect(p.store.keys(ARTIFACTS).filter((k) => !k.startsWith('models/') && !k.startsWith('catalog/'))).toEqual([`events/${id}.json`]);
    expect(p.store.json(ARTIFACTS, `events/${id}.json`)).toMatchObject({ key: 'a.png', kind: 'removed', sequencer: '02' });
    expect(await (await p.vectorStore.openIndex('emb-v0'))!.count()).toBe(0);
  });

  it('skips a created-event for an object that is gone', async () => {
    expect(await augmentImage(p, created('never-existed.png'))).toBe('stale');
    expect(p.embedQueue.sent).toHaveLength(0);
  });

  it('derives images before any model is published: derived data belongs to no model', async () => {
    const empty = await fakePipeline({ publish: false });
    await empty.store.put(IMAGES, 'a.png', await gradientImage(8, 8));
    expect(await augmentImage(empty, created('a.png'))).toBe('augmented');
    await expect(embedImage(empty, empty.embedQueue.messages()[0] as never)).rejects.toThrow(/no serving model/);
  });
});

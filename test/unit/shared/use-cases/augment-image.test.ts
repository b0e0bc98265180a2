import { artifactKeys } from '../../../../shared/artifact-keys';
import { imageIdForKey } from '../../../../shared/ids';
import { decodeNpyU8 } from '../../../../shared/image/npy';
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

  it('writes the canonical image and K views as one npy, then the meta, then queues the embed', async () => {
    await p.store.put(IMAGES, 'photos/a b+c.png', await gradientImage(40, 30));
    expect(await augmentImage(p, created('photos/a b+c.png'))).toBe('augmented');
    const id = imageIdForKey('photos/a b+c.png');
    const views = decodeNpyU8((await p.store.get(ARTIFACTS, artifactKeys.derivedViews(id)))!);
    expect(views.shape).toEqual([3, 16, 16, 3]);
    expect(p.store.json(ARTIFACTS, artifactKeys.derivedMeta(id))).toMatchObject({
      key: 'photos/a b+c.png',
      imageId: id,
      views: 2,
      source: { width: 40, height: 30, format: 'png' },
    });
    expect(p.embedQueue.messages()).toEqual([{ key: 'photos/a b+c.png', imageId: id, sequencer: '01' }]);
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
    // Only the tombstone stays: the newest event for the key was its removal.
    const id = imageIdForKey('a.png');
    expect(p.store.keys(ARTIFACTS).filter((k) => !k.startsWith('models/'))).toEqual([`events/${id}.json`]);
    expect(p.store.json(ARTIFACTS, `events/${id}.json`)).toMatchObject({ key: 'a.png', kind: 'removed', sequencer: '02' });
    expect(await (await p.vectorStore.openIndex('emb-v0'))!.count()).toBe(0);
  });

  it('skips a created-event for an object that is gone', async () => {
    expect(await augmentImage(p, created('never-existed.png'))).toBe('stale');
    expect(p.embedQueue.sent).toHaveLength(0);
  });

  it('throws (to be retried) while no model is published', async () => {
    const empty = await fakePipeline({ publish: false });
    await empty.store.put(IMAGES, 'a.png', await gradientImage(8, 8));
    await expect(augmentImage(empty, created('a.png'))).rejects.toThrow(/no serving model/);
  });
});

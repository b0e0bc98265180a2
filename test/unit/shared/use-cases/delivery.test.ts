/**
 * Delivery faults: duplicate, out-of-order and stale S3 events, and workers racing a removal or a
 * re-upload of the same key. Whatever the order, the index ends with exactly the newest state.
 */
import { artifactKeys } from '../../../../shared/artifact-keys';
import { imageIdForKey } from '../../../../shared/ids';
import type { EmbedMessage } from '../../../../shared/schemas';
import { augmentImage, type ObjectEvent } from '../../../../shared/use-cases/augment-image';
import { embedImage } from '../../../../shared/use-cases/embed-image';
import { compareSequencers } from '../../../../shared/use-cases/event-ledger';
import { gradientImage, solidPng } from '../../../support/images';
import { ARTIFACTS, fakePipeline, IMAGES, type FakePipeline } from '../../../support/pipeline';

const KEY = 'photos/cat.png';
const ID = imageIdForKey(KEY);
const ev = (kind: ObjectEvent['kind'], sequencer: string): ObjectEvent => ({ kind, bucket: IMAGES, key: KEY, sequencer });

describe('compareSequencers', () => {
  it('orders hex values of different lengths by left-padding the shorter with zeros', () => {
    expect(compareSequencers('0A', '0B')).toBeLessThan(0);
    expect(compareSequencers('FF', '0100')).toBeLessThan(0);
    expect(compareSequencers('00ff', 'FF')).toBe(0);
    expect(compareSequencers('0062E99A88DC407460', '0062E99A88DC40745F')).toBeGreaterThan(0);
  });
});

describe('event delivery', () => {
  let p: FakePipeline;
  const index = async () => (await p.vectorStore.openIndex('emb-v0'))!;
  const embedAll = async () => {
    for (const m of p.embedQueue.messages<EmbedMessage>()) await embedImage(p, m);
    p.embedQueue.sent.length = 0;
  };
  const metaEtag = () => (p.store.json(ARTIFACTS, artifactKeys.derivedMeta(ID)) as { etag: string } | undefined)?.etag;

  beforeEach(async () => {
    p = await fakePipeline();
  });

  it('a duplicate event is processed again harmlessly: one vector', async () => {
    await p.store.put(IMAGES, KEY, await gradientImage(20, 20));
    expect(await augmentImage(p, ev('created', '0A'))).toBe('augmented');
    expect(await augmentImage(p, ev('created', '0A'))).toBe('augmented');
    await embedAll();
    expect(await (await index()).count()).toBe(1);
  });

  it('an older create delivered after a newer one is stale and changes nothing', async () => {
    await p.store.put(IMAGES, KEY, await solidPng(8, 8, [255, 0, 0]));
    await p.store.put(IMAGES, KEY, await solidPng(8, 8, [0, 0, 255])); // overwritten before any event arrived
    const etag = (await p.store.head(IMAGES, KEY))!.etag;
    expect(await augmentImage(p, ev('created', '0B'))).toBe('augmented');
    const views = await p.store.get(ARTIFACTS, artifactKeys.derivedViews(ID));
    expect(await augmentImage(p, ev('created', '0A'))).toBe('stale');
    expect(p.embedQueue.sent).toHaveLength(1);
    expect(await p.store.get(ARTIFACTS, artifactKeys.derivedViews(ID))).toEqual(views);
    expect(metaEtag()).toBe(etag);
  });

  it('a create delivered after its removal never resurrects the image, even once the key exists again', async () => {
    await p.store.put(IMAGES, KEY, await gradientImage(20, 20));
    await augmentImage(p, ev('created', '01'));
    await embedAll();
    await p.store.delete(IMAGES, KEY);
    expect(await augmentImage(p, ev('removed', '02'))).toBe('deleted');
    // Redelivered old create: stale by sequencer (no HEAD could tell, were the key re-uploaded meanwhile).
    expect(await augmentImage(p, ev('created', '01'))).toBe('stale');
    expect(p.embedQueue.sent).toHaveLength(0);
    expect(await (await index()).count()).toBe(0);
    expect(p.store.json(ARTIFACTS, artifactKeys.events(ID))).toMatchObject({ kind: 'removed', sequencer: '02' });
  });

  it('a removal delivered before its create: the create is stale, nothing is indexed', async () => {
    await p.store.put(IMAGES, KEY, await gradientImage(20, 20));
    await p.store.delete(IMAGES, KEY);
    expect(await augmentImage(p, ev('removed', '02'))).toBe('deleted');
    expect(await augmentImage(p, ev('created', '01'))).toBe('stale');
    expect(p.store.keys(ARTIFACTS).filter((k) => k.startsWith('derived/'))).toEqual([]);
  });

  it('a re-upload replaces the vector (same id, new content)', async () => {
    await p.store.put(IMAGES, KEY, await solidPng(8, 8, [255, 0, 0]));
    await augmentImage(p, ev('created', '01'));
    await embedAll();
    const before = (await (await index()).get([ID]))[0]!.vector;
    await p.store.put(IMAGES, KEY, await gradientImage(30, 10));
    await augmentImage(p, ev('created', '02'));
    await embedAll();
    const after = await (await index()).get([ID]);
    expect(after).toHaveLength(1);
    expect(Array.from(after[0]!.vector)).not.toEqual(Array.from(before));
    expect(await (await index()).count()).toBe(1);
  });

  it('a removal while augment is decoding: the augment worker undoes its own writes', async () => {
    await p.store.put(IMAGES, KEY, await gradientImage(20, 20));
    // Augment reads the object; right after it writes the meta, the key is deleted and the removal processed.
    const original = p.store.put.bind(p.store);
    let removedDuring = false;
    p.store.put = async (bucket, key, body, type) => {
      await original(bucket, key, body, type);
      if (!removedDuring && key === artifactKeys.derivedMeta(ID)) {
        removedDuring = true;
        await p.store.delete(IMAGES, KEY);
        expect(await augmentImage(p, ev('removed', '02'))).toBe('deleted');
      }
    };
    expect(await augmentImage(p, ev('created', '01'))).toBe('deleted'); // it redid the newer removal
    expect(removedDuring).toBe(true);
    expect(p.embedQueue.sent).toHaveLength(0);
    expect(p.store.keys(ARTIFACTS).filter((k) => k.startsWith('derived/'))).toEqual([]);
  });

  it('a removal while embed is inferring: the embed worker deletes the vector it wrote', async () => {
    await p.store.put(IMAGES, KEY, await gradientImage(20, 20));
    await augmentImage(p, ev('created', '01'));
    const [message] = p.embedQueue.messages<EmbedMessage>();
    // The removal runs completely after embed has read the views and before it writes the vector.
    p.store.beforeNextGet(ARTIFACTS, artifactKeys.label(ID), async () => {
      await p.store.delete(IMAGES, KEY);
      expect(await augmentImage(p, ev('removed', '02'))).toBe('deleted');
    });
    expect(await embedImage(p, message!)).toBe('stale');
    expect(await (await index()).count()).toBe(0);
  });

  it('a re-upload while an older augment is writing: the newest content wins', async () => {
    const red = await solidPng(8, 8, [255, 0, 0]);
    const blue = await gradientImage(16, 16);
    await p.store.put(IMAGES, KEY, red);
    // The old worker has read the red bytes; before it writes, the key is re-uploaded and the new
    // event processed completely. The old worker's writes then land last.
    const original = p.store.get.bind(p.store);
    let raced = false;
    p.store.get = async (bucket, key) => {
      const body = await original(bucket, key);
      if (!raced && bucket === IMAGES && key === KEY) {
        raced = true;
        await p.store.put(IMAGES, KEY, blue);
        expect(await augmentImage(p, ev('created', '02'))).toBe('augmented');
      }
      return body;
    };
    await augmentImage(p, ev('created', '01'));
    expect(metaEtag()).toBe((await p.store.head(IMAGES, KEY))!.etag);
    await embedAll();
    expect(await (await index()).count()).toBe(1);
  });
});

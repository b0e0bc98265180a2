import { CanonicalHandoff } from '../../../../shared/canonical-handoff';
import { ConflictError, NotFoundError, BadRequestError } from '../../../../shared/errors';
import { imageIdForKey } from '../../../../shared/ids';
import { augmentImage } from '../../../../shared/use-cases/augment-image';
import { embedImage } from '../../../../shared/use-cases/embed-image';
import { putLabels } from '../../../../shared/use-cases/labels';
import { neighborsOfImage, neighborsOfKey } from '../../../../shared/use-cases/query';
import { health, imageStatus, modelsView } from '../../../../shared/use-cases/status';
import { publishTestModel, testManifest } from '../../../support/fakes';
import { gradientImage, solidPng } from '../../../support/images';
import { fakePipeline, IMAGES, ARTIFACTS, type FakePipeline } from '../../../support/pipeline';

async function ingest(p: FakePipeline, key: string, body: Buffer) {
  await p.store.put(IMAGES, key, body);
  await augmentImage(p, { kind: 'created', bucket: IMAGES, key, sequencer: '01' });
  const message = p.embedQueue.messages<{ key: string; imageId: string; sequencer: string }>().find((m) => m.key === key);
  if (message) await embedImage(p, message);
}

describe('embed and query', () => {
  let p: FakePipeline;
  beforeEach(async () => {
    p = await fakePipeline();
    await ingest(p, 'red.png', await solidPng(20, 20, [250, 10, 10]));
    await ingest(p, 'red2.png', await solidPng(20, 20, [240, 20, 20]));
    await ingest(p, 'blue.png', await solidPng(20, 20, [10, 10, 250]));
    await ingest(p, 'grad.png', await gradientImage(20, 20));
  });

  describe('embedImage', () => {
    it('upserts one normalised vector per image with {key, modelVersion}', async () => {
      const index = (await p.vectorStore.openIndex('emb-v0'))!;
      expect(await index.count()).toBe(4);
      const [rec] = await index.get([imageIdForKey('red.png')]);
      expect(rec!.metadata).toEqual({ key: 'red.png', modelVersion: 'v0' });
      expect(Math.hypot(...rec!.vector)).toBeCloseTo(1, 5);
    });

    it('also writes into the candidate index during a rollout', async () => {
      await publishTestModel(p.store, ARTIFACTS, testManifest('v1'), 'candidate');
      await embedImage(p, { key: 'red.png', imageId: imageIdForKey('red.png'), sequencer: '02' });
      const [rec] = await (await p.vectorStore.openIndex('emb-v1'))!.get([imageIdForKey('red.png')]);
      expect(rec!.metadata.modelVersion).toBe('v1');
    });

    it('acknowledges a message whose derived files are gone', async () => {
      expect(await embedImage(p, { key: 'x.png', imageId: imageIdForKey('x.png'), sequencer: '1' })).toBe('stale');
    });

    it('takes the working image augment handed over in process instead of reading canonical.png back, with the same vector', async () => {
      const handoff = new CanonicalHandoff();
      const q = { ...p, handoff };
      const key = 'handed.png';
      const id = imageIdForKey(key);
      await p.store.put(IMAGES, key, await gradientImage(40, 30));
      await augmentImage(q, { kind: 'created', bucket: IMAGES, key, sequencer: '05' });
      expect(handoff.size.entries).toBe(1);
      const reads: string[] = [];
      const get = p.store.get.bind(p.store);
      const spied = {
        ...q,
        store: Object.assign(Object.create(p.store), {
          get: (b: string, k: string) => {
            reads.push(k);
            return get(b, k);
          },
        }),
      };
      expect(await embedImage(spied, { key, imageId: id, sequencer: '05' })).toBe('indexed');
      expect(reads.some((k) => k.endsWith('/canonical.png'))).toBe(false);
      expect(handoff.size).toEqual({ entries: 0, bytes: 0 }); // taken once
      const index = (await p.vectorStore.openIndex('emb-v0'))!;
      const [handed] = await index.get([id]);
      // Read back from the stored PNG (nothing handed over now): the same vector.
      expect(await embedImage(spied, { key, imageId: id, sequencer: '05' })).toBe('indexed');
      expect(reads.some((k) => k.endsWith('/canonical.png'))).toBe(true);
      const [stored] = await index.get([id]);
      expect(Array.from(stored!.vector)).toEqual(Array.from(handed!.vector));
    });

    it('never takes a handed-over image for another upload of the key', async () => {
      const handoff = new CanonicalHandoff();
      const image = { width: 1, height: 1, rgb: Buffer.from([1, 2, 3]), format: 'raw' };
      handoff.offer('id', 'etag-1', 'seq-1', image);
      expect(handoff.take('id', 'etag-2', 'seq-1')).toBeUndefined();
      handoff.offer('id', 'etag-1', 'seq-1', image);
      expect(handoff.take('id', 'etag-1', 'seq-2')).toBeUndefined();
      handoff.offer('id', 'etag-1', 'seq-1', image);
      expect(handoff.take('id', 'etag-1', 'seq-1')).toBe(image);
      expect(handoff.take('id', 'etag-1', 'seq-1')).toBeUndefined();
    });

    it('bounds the handed-over images by bytes, oldest out first', () => {
      const handoff = new CanonicalHandoff(10);
      const px = (n: number) => ({ width: n, height: 1, rgb: Buffer.alloc(n * 3), format: 'raw' });
      handoff.offer('a', 'e', 's', px(1));
      handoff.offer('b', 'e', 's', px(2));
      handoff.offer('c', 'e', 's', px(1)); // 3 + 6 + 3 > 10: a goes
      expect(handoff.size).toEqual({ entries: 2, bytes: 9 });
      expect(handoff.take('a', 'e', 's')).toBeUndefined();
      handoff.offer('big', 'e', 's', px(4)); // larger than the bound: not kept
      expect(handoff.take('big', 'e', 's')).toBeUndefined();
      expect(handoff.take('b', 'e', 's')).toBeDefined();
    });

    it('loads each encoder once per container', async () => {
      await embedImage(p, { key: 'red.png', imageId: imageIdForKey('red.png'), sequencer: '02' });
      expect(p.encoders.created).toBe(1);
    });
  });

  describe('neighborsOfKey', () => {
    it('returns the nearest other images, excluding the query image', async () => {
      const res = await neighborsOfKey(p, { key: 'red.png', k: 2 });
      expect(res.query).toEqual({ key: 'red.png', modelVersion: 'v0' });
      expect(res.neighbors.map((n) => n.key)).toEqual(['red2.png', expect.any(String)]);
      expect(res.neighbors.map((n) => n.key)).not.toContain('red.png');
    });

    it('answers 404 for an unknown key and 409 for a pending or quarantined one', async () => {
      await expect(neighborsOfKey(p, { key: 'nope.png', k: 3 })).rejects.toThrow(NotFoundError);
      await p.store.put(IMAGES, 'pending.png', await solidPng(4, 4, [1, 2, 3]));
      await expect(neighborsOfKey(p, { key: 'pending.png', k: 3 })).rejects.toMatchObject({ status: 409, code: 'not_indexed' });
      await p.store.put(IMAGES, 'bad.png', 'garbage');
      await augmentImage(p, { kind: 'created', bucket: IMAGES, key: 'bad.png', sequencer: '1' });
      await expect(neighborsOfKey(p, { key: 'bad.png', k: 3 })).rejects.toThrow(ConflictError);
    });

    it('filters by label', async () => {
      await putLabels(p, [{ key: 'blue.png', label: 'cool' }]);
      const res = await neighborsOfKey(p, { key: 'red.png', k: 5, label: 'cool' });
      expect(res.neighbors).toEqual([expect.objectContaining({ key: 'blue.png', label: 'cool' })]);
    });
  });

  describe('neighborsOfImage', () => {
    it('embeds uploaded bytes on the fly and searches the serving index', async () => {
      const res = await neighborsOfImage(p, { bytes: await solidPng(20, 20, [250, 10, 10]), k: 1 });
      expect(res.neighbors[0]!.key).toBe('red.png');
      expect(res.neighbors[0]!.distance).toBeCloseTo(0, 5);
    });

    it('answers 400 for bytes that are not an image', async () => {
      await expect(neighborsOfImage(p, { bytes: Buffer.from('nope'), k: 1 })).rejects.toThrow(BadRequestError);
    });
  });

  describe('putLabels', () => {
    it('stores labels, attaches them to indexed vectors, and rejects unknown keys with 404', async () => {
      await expect(
        putLabels(p, [
          { key: 'red.png', label: 'warm' },
          { key: 'ghost.png', label: 'x' },
        ]),
      ).rejects.toThrow(/unknown image key: "ghost.png"/);
      expect(
        await putLabels(p, [
          { key: 'red.png', label: 'warm' },
          { key: 'red.png', label: 'hot' },
        ]),
      ).toEqual({ updated: 1 });
      expect(p.store.json(ARTIFACTS, `labels/${imageIdForKey('red.png')}.json`)).toMatchObject({ key: 'red.png', label: 'hot' });
      expect(await imageStatus(p, 'red.png')).toEqual({ key: 'red.png', state: 'indexed', modelVersion: 'v0', label: 'hot' });
    });
  });

  describe('status', () => {
    it('reports pending, indexed and quarantined images and overall health', async () => {
      await p.store.put(IMAGES, 'pending.png', await solidPng(4, 4, [1, 2, 3]));
      await p.store.put(IMAGES, 'bad.png', 'garbage');
      await augmentImage(p, { kind: 'created', bucket: IMAGES, key: 'bad.png', sequencer: '1' });
      expect((await imageStatus(p, 'pending.png')).state).toBe('pending');
      expect(await imageStatus(p, 'bad.png')).toEqual({ key: 'bad.png', state: 'quarantined', reason: expect.stringMatching(/not a supported image/) });
      await expect(imageStatus(p, 'ghost.png')).rejects.toThrow(NotFoundError);
      expect(await health(p)).toMatchObject({ status: 'ok', servingModel: 'v0', indexed: 4, quarantined: 1 });
    });

    it('lists the serving model and the history of versions', async () => {
      await publishTestModel(p.store, ARTIFACTS, testManifest('v1', { parent: 'v0', gate: { passed: false, reasons: ['worse kNN'] } }));
      const view = await modelsView(p);
      expect(view.serving).toMatchObject({ version: 'v0', index: 'emb-v0' });
      expect(view.history.map((h) => [h.version, h.gate.passed])).toEqual([
        ['v1', false],
        ['v0', true],
      ]);
    });
  });
});

describe('embedImage with a model of another input size', () => {
  it('resizes the derived canonical image to the new model\u2019s input', async () => {
    const p = await fakePipeline();
    await ingest(p, 'red.png', await solidPng(20, 20, [250, 10, 10]));
    const bigger = testManifest('v1', { input: { ...testManifest().input, height: 24, width: 24 } });
    await publishTestModel(p.store, ARTIFACTS, bigger, 'serving');
    expect(await embedImage(p, { key: 'red.png', imageId: imageIdForKey('red.png'), sequencer: '2' })).toBe('indexed');
    const [rec] = await (await p.vectorStore.openIndex('emb-v1'))!.get([imageIdForKey('red.png')]);
    expect(rec!.metadata.modelVersion).toBe('v1');
  });
});

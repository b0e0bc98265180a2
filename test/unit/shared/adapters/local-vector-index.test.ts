import { appendFileSync, cpSync, existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HnswAccelerator } from '../../../../shared/adapters/hnsw-accelerator';
import { SlotRecords } from '../../../../shared/adapters/slot-records';
import { LocalVectorStore, NATIVE_SCAN_MIN_VECTORS } from '../../../../shared/adapters/local-vector-index';
import { l2Normalize } from '../../../../shared/image/tensor';

function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

function randomUnit(dim: number, r: () => number): Float32Array {
  return l2Normalize(Float32Array.from({ length: dim }, () => r() - 0.5));
}

const meta = (i: number, label?: string) => ({ key: `k${i}`, modelVersion: 'v0', ...(label ? { label } : {}) });

const stores: LocalVectorStore[] = [];
const storeAt = (dir: string) => {
  const s = new LocalVectorStore(dir);
  stores.push(s);
  return s;
};
// Every store a test opened is closed after it, in every describe below.
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
});

describe('LocalVectorStore', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'vectors-'));
  });

  describe('ensureIndex', () => {
    it('creates an index once and refuses another dimension for the same name', async () => {
      const store = storeAt(dir);
      await store.ensureIndex('emb-v0', 4);
      await store.ensureIndex('emb-v0', 4);
      await expect(store.ensureIndex('emb-v0', 8)).rejects.toThrow(/dimension 4/);
      expect(await store.listIndexes()).toEqual(['emb-v0']);
      expect(await store.openIndex('emb-v9')).toBeUndefined();
    });

    it('rejects names that could escape the store directory', async () => {
      const store = storeAt(dir);
      await expect(store.ensureIndex('../etc', 4)).rejects.toThrow(/invalid index name/);
      expect(await store.openIndex('../../x')).toBeUndefined();
    });
  });

  describe('query', () => {
    it('returns exactly the brute-force top k by cosine distance', async () => {
      const r = rng(7);
      const index = await storeAt(dir).ensureIndex('emb-v0', 16);
      const vectors = Array.from({ length: 500 }, () => randomUnit(16, r));
      await index.put(vectors.map((vector, i) => ({ id: `id${i}`, vector, metadata: meta(i) })));
      for (let q = 0; q < 20; q += 1) {
        const query = randomUnit(16, r);
        const expected = vectors
          .map((v, i) => ({ id: `id${i}`, d: 1 - v.reduce((s, x, j) => s + x * query[j]!, 0) }))
          .sort((a, b) => a.d - b.d)
          .slice(0, 10);
        const got = await index.query({ vector: query, topK: 10 });
        expect(got.map((m) => m.id)).toEqual(expected.map((e) => e.id));
        for (const [i, m] of got.entries()) expect(m.distance).toBeCloseTo(expected[i]!.d, 5);
      }
    });

    it('filters by human label or pseudo-label and excludes ids', async () => {
      const index = await storeAt(dir).ensureIndex('emb-v0', 2);
      await index.put([
        { id: 'a', vector: l2Normalize(Float32Array.from([1, 0])), metadata: meta(1, 'cat') },
        { id: 'b', vector: l2Normalize(Float32Array.from([1, 0.1])), metadata: { ...meta(2), pseudoLabel: 'cat', confidence: 0.9 } },
        { id: 'c', vector: l2Normalize(Float32Array.from([1, 0.05])), metadata: meta(3, 'dog') },
      ]);
      const q = l2Normalize(Float32Array.from([1, 0]));
      expect((await index.query({ vector: q, topK: 10, label: 'cat' })).map((m) => m.id)).toEqual(['a', 'b']);
      expect((await index.query({ vector: q, topK: 10, excludeIds: ['a'] })).map((m) => m.id)).toEqual(['c', 'b']);
    });
  });

  describe('put and delete', () => {
    it('upserts by id and deletes, keeping the remaining vectors intact', async () => {
      const index = await storeAt(dir).ensureIndex('emb-v0', 2);
      const v = (x: number, y: number) => l2Normalize(Float32Array.from([x, y]));
      await index.put([
        { id: 'a', vector: v(1, 0), metadata: meta(1) },
        { id: 'b', vector: v(0, 1), metadata: meta(2) },
        { id: 'c', vector: v(1, 1), metadata: meta(3) },
      ]);
      await index.put([{ id: 'a', vector: v(0, 1), metadata: meta(1, 'new') }]);
      await index.delete(['b', 'missing']);
      expect(await index.count()).toBe(2);
      const [a] = await index.get(['a']);
      expect(Array.from(a!.vector)).toEqual(Array.from(v(0, 1)));
      expect(a!.metadata.label).toBe('new');
      const [c] = await index.get(['c']);
      expect(Array.from(c!.vector)).toEqual(Array.from(v(1, 1)));
    });

    it('rejects vectors of the wrong dimension', async () => {
      const index = await storeAt(dir).ensureIndex('emb-v0', 3);
      await expect(index.put([{ id: 'a', vector: new Float32Array(2), metadata: meta(1) }])).rejects.toThrow(/dimension/);
    });
  });

  describe('durability', () => {
    it('restores every acknowledged write after a crash, ignoring a torn last record', async () => {
      const r = rng(3);
      const index = await storeAt(dir).ensureIndex('emb-v0', 8);
      const vectors = Array.from({ length: 50 }, () => randomUnit(8, r));
      await index.put(vectors.map((vector, i) => ({ id: `id${i}`, vector, metadata: meta(i) })));
      await index.delete(['id3', 'id7']);
      appendFileSync(join(dir, 'emb-v0', 'vectors.log'), Buffer.from([200, 0, 0, 0, 1, 2]));
      const reopened = (await storeAt(dir).openIndex('emb-v0'))!;
      expect(await reopened.count()).toBe(48);
      const [v10] = await reopened.get(['id10']);
      expect(Array.from(v10!.vector)).toEqual(Array.from(vectors[10]!));
      expect(await reopened.get(['id3'])).toEqual([]);
      await reopened.put([{ id: 'id3', vector: vectors[3]!, metadata: meta(3) }]);
      expect(await (await storeAt(dir).openIndex('emb-v0'))!.count()).toBe(49);
    });

    it('compacts a journal of many overwrites down to the live vectors', async () => {
      const r = rng(5);
      const store = storeAt(dir);
      const index = await store.ensureIndex('emb-v0', 4);
      for (let round = 0; round < 60; round += 1) {
        await index.put(Array.from({ length: 200 }, (_, i) => ({ id: `id${i}`, vector: randomUnit(4, r), metadata: meta(i, `r${round}`) })));
      }
      await store.close();
      const reopened = (await storeAt(dir).openIndex('emb-v0'))!;
      expect(await reopened.count()).toBe(200);
      expect((await reopened.get(['id5']))[0]!.metadata.label).toBe('r59');
    });
  });
});

describe('LocalVectorIndex native scan (onnxruntime MatMul above NATIVE_SCAN_MIN_VECTORS)', () => {
  it('returns exactly the brute-force top k, with label filters and exclusions, and survives writes during a query', async () => {
    const store = storeAt(mkdtempSync(join(tmpdir(), 'vectors-native-')));
    const index = await store.ensureIndex('emb-native', 32);
    const r = rng(7);
    const n = NATIVE_SCAN_MIN_VECTORS + 1000;
    const vectors = Array.from({ length: n }, () => randomUnit(32, r));
    await index.put(vectors.map((vector, i) => ({ id: `id-${i}`, vector, metadata: meta(i, i % 3 === 0 ? 'cat' : undefined) })));
    const brute = (q: Float32Array, k: number, filter: (i: number) => boolean) =>
      vectors
        .map((v, i) => ({ i, dot: v.reduce((acc, x, j) => acc + x * q[j]!, 0) }))
        .filter((x) => filter(x.i))
        .sort((a, b) => b.dot - a.dot)
        .slice(0, k)
        .map((x) => `id-${x.i}`);
    for (let t = 0; t < 5; t += 1) {
      const q = randomUnit(32, r);
      expect((await index.query({ vector: q, topK: 10 })).map((m) => m.id)).toEqual(brute(q, 10, () => true));
      expect((await index.query({ vector: q, topK: 5, label: 'cat' })).map((m) => m.id)).toEqual(brute(q, 5, (i) => i % 3 === 0));
      const top = brute(q, 1, () => true)[0]!;
      expect((await index.query({ vector: q, topK: 3, excludeIds: [top] })).map((m) => m.id)).toEqual(
        brute(q, 4, () => true)
          .filter((id) => id !== top)
          .slice(0, 3),
      );
    }
    // A label with its own packed copy (over NATIVE_SCAN_MIN_VECTORS members, under a quarter of the index).
    const labelled = Array.from({ length: 3 * n }, () => randomUnit(32, r));
    const isX = (i: number) => i % 7 === 0;
    await index.put(
      labelled.map((vector, i) => ({ id: `x-${i}`, vector, metadata: { key: `x${i}`, modelVersion: 'v0', ...(isX(i) ? { pseudoLabel: 'x' } : {}) } })),
    );
    const bruteX = (q: Float32Array, k: number, skip: Set<number>) =>
      labelled
        .map((v, i) => ({ i, dot: v.reduce((acc, x, j) => acc + x * q[j]!, 0) }))
        .filter((x) => isX(x.i) && !skip.has(x.i))
        .sort((a, b) => b.dot - a.dot)
        .slice(0, k)
        .map((x) => `x-${x.i}`);
    const qx = randomUnit(32, r);
    expect((await index.query({ vector: qx, topK: 10, label: 'x' })).map((m) => m.id)).toEqual(bruteX(qx, 10, new Set()));
    // The packed copy follows a delete.
    const best = Number(bruteX(qx, 1, new Set())[0]!.slice(2));
    await index.delete([`x-${best}`]);
    expect((await index.query({ vector: qx, topK: 10, label: 'x' })).map((m) => m.id)).toEqual(bruteX(qx, 10, new Set([best])));
    await index.delete(labelled.map((_, i) => `x-${i}`));

    // A delete lands while the native scan runs: the answer is still exact for the index afterwards.
    const q = randomUnit(32, r);
    const victim = brute(q, 1, () => true)[0]!;
    const [answer] = await Promise.all([index.query({ vector: q, topK: 10 }), index.delete([victim])]);
    expect(answer.map((m) => m.id)).not.toContain(victim);
    const alive = (i: number) => `id-${i}` !== victim;
    expect(answer.map((m) => m.id)).toEqual(brute(q, 10, alive));
  });
  it("keeps a label's packed copy in step through every kind of change (built once, exact after each)", async () => {
    const DIM = 16;
    const index = await storeAt(mkdtempSync(join(tmpdir(), 'vectors-packs-'))).ensureIndex('emb-packs', DIM);
    const r = rng(21);
    // The test's own model of the index: id -> vector and label.
    const model = new Map<string, { vector: Float32Array; label?: string; pseudo?: string }>();
    const put = async (entries: Array<[string, { vector: Float32Array; label?: string; pseudo?: string }]>) => {
      for (const [id, e] of entries) model.set(id, e);
      await index.put(
        entries.map(([id, e]) => ({
          id,
          vector: e.vector,
          metadata: { key: id, modelVersion: 'v0', ...(e.label ? { label: e.label } : {}), ...(e.pseudo ? { pseudoLabel: e.pseudo } : {}) },
        })),
      );
    };
    const members = () => [...model].filter(([, e]) => e.label === 'rare' || e.pseudo === 'rare');
    const check = async (what: string) => {
      // The packed path: enough members for the native scan, under a quarter of the index.
      expect(members().length).toBeGreaterThanOrEqual(NATIVE_SCAN_MIN_VECTORS);
      expect(members().length * 4).toBeLessThan(model.size);
      for (let t = 0; t < 3; t += 1) {
        const q = randomUnit(DIM, r);
        const want = members()
          .map(([id, e]) => ({ id, dot: e.vector.reduce((acc, x, j) => acc + x * q[j]!, 0) }))
          .sort((a, b) => b.dot - a.dot)
          .slice(0, 8)
          .map((x) => x.id);
        expect({ what, got: (await index.query({ vector: q, topK: 8, label: 'rare' })).map((m) => m.id) }).toEqual({ what, got: want });
      }
    };
    const built = jest.spyOn(SlotRecords.prototype, 'slotsWithLabel');
    await put(Array.from({ length: 6000 }, (_, i) => [`id-${i}`, { vector: randomUnit(DIM, r), ...(i % 6 === 0 ? { label: 'rare' } : {}) }]));
    await check('built');
    // New members beyond the pack's spare rows (it grows), and new non-members.
    await put(Array.from({ length: 500 }, (_, i) => [`new-${i}`, { vector: randomUnit(DIM, r), ...(i % 2 === 0 ? { pseudo: 'rare' } : {}) }]));
    await check('appended');
    // Members' vectors replaced in place.
    await put(
      members()
        .slice(0, 200)
        .map(([id, e]) => [id, { ...e, vector: randomUnit(DIM, r) }]),
    );
    await check('replaced');
    // Relabelled: members leave (vacant rows), non-members join as pseudo-labels.
    const leaving = members().slice(0, 150);
    const joining = [...model].filter(([, e]) => !e.label && !e.pseudo).slice(0, 150);
    await put([
      ...leaving.map(([id, e]) => [id, { vector: e.vector, label: 'other' }] as [string, typeof e]),
      ...joining.map(([id, e]) => [id, { vector: e.vector, pseudo: 'rare' }] as [string, typeof e]),
    ]);
    await check('relabelled');
    // Deletes: each moves the last slot (a member or not) into the freed one.
    const gone = [...model.keys()].filter((_, i) => i % 9 === 4);
    for (const id of gone) model.delete(id);
    await index.delete(gone);
    await check('deleted');
    // The newest members, which the deletes moved out of the last slots, change again.
    await put(
      members()
        .slice(-150)
        .map(([id, e]) => [id, { ...e, vector: randomUnit(DIM, r) }]),
    );
    await check('moved, then replaced');
    // Enough members leave that vacant rows pass a quarter of the pack: it is squeezed before the scan.
    const many = members().slice(0, 400);
    await put(many.map(([id, e]) => [id, { vector: e.vector }]));
    await check('squeezed');
    // The newest ids deleted, members among them (most sit in the last slots, where moves come from).
    const tail = [...model.keys()].slice(-300);
    for (const id of tail) model.delete(id);
    await index.delete(tail);
    await check('tail deleted');
    // A member put while a filtered scan is in flight: the answer is exact for the index afterwards.
    const q = randomUnit(DIM, r);
    const [during] = await Promise.all([index.query({ vector: q, topK: 3, label: 'rare' }), put([['during', { vector: q, label: 'rare' }]])]);
    expect(during[0]?.id).toBe('during');
    expect(built.mock.calls.filter(([label]) => label === 'rare')).toHaveLength(1);
    built.mockRestore();
  });
});

describe('LocalVectorIndex with an HNSW graph (from approximateMinVectors on)', () => {
  const DIM = 24;
  const N = 600;
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'vectors-hnsw-'));
  });
  const open = (minVectors = 200) => {
    const s = new LocalVectorStore(dir, { approximateMinVectors: minVectors });
    stores.push(s);
    return s;
  };
  const brute = (vectors: Map<string, Float32Array>, q: Float32Array, k: number) =>
    [...vectors]
      .map(([id, v]) => ({ id, dot: v.reduce((acc, x, j) => acc + x * q[j]!, 0) }))
      .sort((a, b) => b.dot - a.dot)
      .slice(0, k)
      .map((x) => x.id);
  const recall = (got: string[], want: string[]) => got.filter((id) => want.includes(id)).length / want.length;

  it('answers unfiltered queries from the graph once it is in step; label filters stay exact', async () => {
    const r = rng(11);
    const index = (await open().ensureIndex('emb-hnsw', DIM)) as import('../../../../shared/adapters/local-vector-index').LocalVectorIndex;
    const vectors = new Map<string, Float32Array>();
    for (let i = 0; i < N; i += 1) vectors.set(`id-${i}`, randomUnit(DIM, r));
    await index.put([...vectors].map(([id, vector], i) => ({ id, vector, metadata: meta(i, i % 4 === 0 ? 'cat' : undefined) })));
    await index.approximateSettled();
    expect(index.approximateReady).toBe(true);
    let total = 0;
    for (let t = 0; t < 20; t += 1) {
      const q = randomUnit(DIM, r);
      total += recall(
        (await index.query({ vector: q, topK: 10 })).map((m) => m.id),
        brute(vectors, q, 10),
      );
      const cats = new Map([...vectors].filter(([id]) => Number(id.slice(3)) % 4 === 0));
      expect((await index.query({ vector: q, topK: 5, label: 'cat' })).map((m) => m.id)).toEqual(brute(cats, q, 5));
    }
    expect(total / 20).toBeGreaterThan(0.95);
  });

  it('follows puts, replaced vectors and deletes (slots move on delete) without returning a removed id', async () => {
    const r = rng(12);
    const index = (await open().ensureIndex('emb-hnsw', DIM)) as import('../../../../shared/adapters/local-vector-index').LocalVectorIndex;
    const vectors = new Map<string, Float32Array>();
    for (let i = 0; i < N; i += 1) vectors.set(`id-${i}`, randomUnit(DIM, r));
    await index.put([...vectors].map(([id, vector], i) => ({ id, vector, metadata: meta(i) })));
    await index.approximateSettled();
    // Delete a third (each delete moves the last slot), replace some vectors, add new ones.
    const removed = [...vectors.keys()].filter((_, i) => i % 3 === 0);
    await index.delete(removed);
    for (const id of removed) vectors.delete(id);
    const replaced = [...vectors.keys()].slice(0, 50);
    for (const id of replaced) vectors.set(id, randomUnit(DIM, r));
    await index.put(replaced.map((id, i) => ({ id, vector: vectors.get(id)!, metadata: meta(i) })));
    for (let i = N; i < N + 100; i += 1) vectors.set(`id-${i}`, randomUnit(DIM, r));
    await index.put([...vectors].slice(-100).map(([id, vector], i) => ({ id, vector, metadata: meta(i) })));
    await index.approximateSettled();
    expect(index.approximateReady).toBe(true);
    for (const id of replaced.slice(0, 10)) {
      const [top] = await index.query({ vector: vectors.get(id)!, topK: 1 });
      expect(top).toMatchObject({ id, distance: expect.any(Number) });
      expect(top!.distance).toBeLessThan(1e-4);
    }
    let total = 0;
    for (let t = 0; t < 20; t += 1) {
      const q = randomUnit(DIM, r);
      const got = (await index.query({ vector: q, topK: 10 })).map((m) => m.id);
      expect(got.filter((id) => removed.includes(id))).toEqual([]);
      total += recall(got, brute(vectors, q, 10));
    }
    expect(total / 20).toBeGreaterThan(0.95);
  });

  it('reopens from its snapshot, and applies what the journal holds after it (a crash loses no vector)', async () => {
    const r = rng(13);
    const vectors = new Map<string, Float32Array>();
    for (let i = 0; i < N; i += 1) vectors.set(`id-${i}`, randomUnit(DIM, r));
    const first = new LocalVectorStore(dir, { approximateMinVectors: 200 });
    const a = (await first.ensureIndex('emb-hnsw', DIM)) as import('../../../../shared/adapters/local-vector-index').LocalVectorIndex;
    await a.put([...vectors].map(([id, vector], i) => ({ id, vector, metadata: meta(i) })));
    await a.approximateSettled();
    await first.close(); // saves the snapshot

    const second = new LocalVectorStore(dir, { approximateMinVectors: 200 });
    const b = (await second.ensureIndex('emb-hnsw', DIM)) as import('../../../../shared/adapters/local-vector-index').LocalVectorIndex;
    expect(b.approximateReady).toBe(true); // adopted as it was: nothing to rebuild
    await second.close();
    // More records after the snapshot, then a "crash": the files as they are now (acknowledged writes
    // in the journal, no new snapshot) are what the next start finds. The writer keeps no graph, so
    // nothing saves a snapshot in the background while the files are copied (a live graph's save,
    // renaming its .tmp files, would race the copy) and the snapshot certainly predates the records.
    const writer = await open(Number.POSITIVE_INFINITY).ensureIndex('emb-hnsw', DIM);
    const late = Array.from({ length: 50 }, (_, i) => [`late-${i}`, randomUnit(DIM, r)] as const);
    await writer.put(late.map(([id, vector], i) => ({ id, vector, metadata: meta(i) })));
    await writer.delete(['id-0']);
    vectors.delete('id-0');
    for (const [id, v] of late) vectors.set(id, v);
    const crashed = mkdtempSync(join(tmpdir(), 'vectors-crashed-'));
    cpSync(dir, crashed, { recursive: true });
    dir = crashed;
    expect(JSON.parse(readFileSync(join(dir, 'emb-hnsw', 'hnsw.json'), 'utf8')).records).toBe(N);

    const adopted = jest.spyOn(HnswAccelerator.prototype, 'adoptSnapshot');
    const third = open();
    const c = (await third.ensureIndex('emb-hnsw', DIM)) as import('../../../../shared/adapters/local-vector-index').LocalVectorIndex;
    // The graph is the snapshot's, loaded at the N-th record; the 51 records after it update it.
    expect(adopted.mock.calls).toEqual([[N]]);
    expect(adopted.mock.results[0]?.value).toBe(true);
    adopted.mockRestore();
    await c.approximateSettled();
    expect(c.approximateReady).toBe(true);
    expect(await c.count()).toBe(vectors.size);
    for (const [id, v] of late.slice(0, 10)) expect((await c.query({ vector: v, topK: 1 }))[0]?.id).toBe(id);
    expect((await c.query({ vector: randomUnit(DIM, r), topK: 50 })).map((m) => m.id)).not.toContain('id-0');
  });

  it("answers a label filter exactly from the label's own vectors, through deletes (moved slots) and relabelling", async () => {
    const r = rng(15);
    const index = await open(Number.POSITIVE_INFINITY).ensureIndex('emb-labels', DIM);
    const vectors = new Map<string, Float32Array>();
    const labels = new Map<string, string | undefined>();
    for (let i = 0; i < N; i += 1) {
      vectors.set(`id-${i}`, randomUnit(DIM, r));
      labels.set(`id-${i}`, i % 10 === 0 ? 'rare' : i % 2 === 0 ? 'even' : undefined);
    }
    await index.put([...vectors].map(([id, vector], i) => ({ id, vector, metadata: meta(i, labels.get(id)) })));
    const gone = [...vectors.keys()].filter((_, i) => i % 7 === 0);
    await index.delete(gone);
    for (const id of gone) vectors.delete(id);
    // Relabel: some 'rare' become 'even', some unlabelled become 'rare' (as pseudo-labels).
    const relabelled = [...vectors.keys()].slice(0, 60);
    await index.put(
      relabelled.map((id, i) => {
        const label = labels.get(id) === 'rare' ? 'even' : labels.get(id) === undefined ? 'rare' : labels.get(id);
        labels.set(id, label);
        return { id, vector: vectors.get(id)!, metadata: { key: id, modelVersion: 'v0', ...(i % 2 === 0 ? { label } : { pseudoLabel: label }) } };
      }),
    );
    for (let t = 0; t < 10; t += 1) {
      const q = randomUnit(DIM, r);
      const rare = new Map([...vectors].filter(([id]) => labels.get(id) === 'rare'));
      expect((await index.query({ vector: q, topK: 7, label: 'rare' })).map((m) => m.id)).toEqual(brute(rare, q, 7));
    }
  });

  it('stays exact below approximateMinVectors', async () => {
    const r = rng(14);
    const index = (await open(10_000).ensureIndex('emb-hnsw', DIM)) as import('../../../../shared/adapters/local-vector-index').LocalVectorIndex;
    await index.put(Array.from({ length: 300 }, (_, i) => ({ id: `id-${i}`, vector: randomUnit(DIM, r), metadata: meta(i) })));
    await index.approximateSettled();
    expect(index.approximateReady).toBe(false);
    expect(existsSync(join(dir, 'emb-hnsw', 'hnsw.usearch'))).toBe(false);
  });
});

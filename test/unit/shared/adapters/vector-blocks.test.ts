import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalVectorStore, NATIVE_SCAN_MIN_VECTORS } from '../../../../shared/adapters/local-vector-index';
import { VECTOR_BLOCK_BYTES, VectorBlocks } from '../../../../shared/adapters/vector-blocks';
import { l2Normalize } from '../../../../shared/image/tensor';
import { random } from '../../../support/seeded';

describe('VectorBlocks', () => {
  it('grows by whole blocks without moving a vector already stored', () => {
    const blocks = new VectorBlocks(4, 4 * 4 * 3); // 3 vectors per block
    expect(blocks.perBlock).toBe(3);
    blocks.set(0, Float32Array.of(1, 2, 3, 4));
    const view = blocks.at(0);
    blocks.ensure(10);
    expect(blocks.capacity).toBe(12);
    // The same memory, not a copy: a contiguous array would have been reallocated by now.
    blocks.set(0, Float32Array.of(5, 6, 7, 8));
    expect([...view]).toEqual([5, 6, 7, 8]);
    blocks.set(7, Float32Array.of(1, 1, 1, 1));
    blocks.copy(7, 2);
    expect([...blocks.at(2)]).toEqual([1, 1, 1, 1]);
    expect(blocks.dot(2, Float32Array.of(1, 2, 3, 4))).toBe(10);
    expect(blocks.views(8).map((v) => [v.start, v.count, v.vectors.length])).toEqual([
      [0, 3, 12],
      [3, 3, 12],
      [6, 2, 8],
    ]);
  });

  it('frees the blocks past those in use, and reads beyond its blocks as an error', () => {
    const blocks = new VectorBlocks(2, 2 * 4 * 5);
    blocks.ensure(23);
    expect(blocks.capacity).toBe(25);
    blocks.release(6);
    expect(blocks.capacity).toBe(10);
    expect(() => blocks.at(10)).toThrow(RangeError);
    blocks.release(0);
    expect(blocks.capacity).toBe(0);
  });

  it('sizes the default block over 32 MiB (always a mapping of its own), whatever the dimension', () => {
    for (const d of [128, 384, 500, 768]) expect(new VectorBlocks(d).perBlock * d * 4).toBeGreaterThanOrEqual(VECTOR_BLOCK_BYTES);
    expect(VECTOR_BLOCK_BYTES).toBeGreaterThan(32 * 2 ** 20);
  });
});

describe('LocalVectorIndex across vector blocks', () => {
  it('answers exactly like a brute-force model through puts, replacements and deletes that move slots between blocks, and after a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vectors-blocks-'));
    const d = 16;
    // 97 vectors per block: native scans span several blocks. Ids and metadata in 2 KiB chunks: many, compacted as records are replaced and deleted.
    const options = { vectorBlockBytes: 97 * d * 4, recordBufferBytes: 2048 };
    const r = random(17);
    const unit = () => l2Normalize(Float32Array.from({ length: d }, () => r() - 0.5));
    const model = new Map<string, { vector: Float32Array; label?: string }>();
    const brute = (q: Float32Array, k: number, label?: string) =>
      [...model]
        .filter(([, v]) => label === undefined || v.label === label)
        .map(([id, v]) => ({ id, dot: v.vector.reduce((acc, x, j) => acc + x * q[j]!, 0) }))
        .sort((a, b) => b.dot - a.dot)
        .slice(0, k)
        .map((x) => x.id);

    let store = new LocalVectorStore(dir, options);
    let index = await store.ensureIndex('emb-blocks', d);
    try {
      let next = 0;
      for (let round = 0; round < 12; round += 1) {
        // Puts of new ids and replacements of live ones.
        const batch = Array.from({ length: 150 }, () => {
          const live = [...model.keys()];
          const id = live.length > 0 && r() < 0.2 ? live[Math.floor(r() * live.length)]! : `id-${next++}`;
          const label = r() < 0.3 ? 'shoe' : undefined;
          return { id, vector: unit(), metadata: { key: id, modelVersion: 'v0', ...(label ? { label } : {}) } };
        });
        await index.put(batch);
        for (const b of batch) model.set(b.id, { vector: b.vector, label: b.metadata.label });
        // Deletes from anywhere: the last slot moves into the freed one, often from another block.
        const live = [...model.keys()];
        const gone = live.filter(() => r() < 0.1);
        await index.delete(gone);
        for (const id of gone) model.delete(id);

        expect(await index.count()).toBe(model.size);
        const q = unit();
        expect((await index.query({ vector: q, topK: 10 })).map((m) => m.id)).toEqual(brute(q, 10));
        const shoes = await index.query({ vector: q, topK: 5, label: 'shoe' });
        expect(shoes.map((m) => m.id)).toEqual(brute(q, 5, 'shoe'));
        for (const m of shoes) expect(m.metadata).toEqual({ key: m.id, modelVersion: 'v0', label: 'shoe' });
      }
      expect(model.size).toBeGreaterThan(NATIVE_SCAN_MIN_VECTORS);
      const sample = [...model.keys()].filter((_, i) => i % 37 === 0);
      for (const got of await index.get(sample)) expect([...got.vector]).toEqual([...model.get(got.id)!.vector]);

      // Deleting most of the index releases blocks; what remains still answers exactly.
      const most = [...model.keys()].filter((_, i) => i % 10 !== 0);
      await index.delete(most);
      for (const id of most) model.delete(id);
      const q = unit();
      expect((await index.query({ vector: q, topK: 10 })).map((m) => m.id)).toEqual(brute(q, 10));
      await index.put([{ id: 'after', vector: unit(), metadata: { key: 'after', modelVersion: 'v0' } }]);
      model.set('after', { vector: (await index.get(['after']))[0]!.vector });
    } finally {
      await store.close();
    }

    store = new LocalVectorStore(dir, options);
    try {
      index = (await store.openIndex('emb-blocks'))!;
      expect(await index.count()).toBe(model.size);
      for (let t = 0; t < 3; t += 1) {
        const q = unit();
        expect((await index.query({ vector: q, topK: 10 })).map((m) => m.id)).toEqual(brute(q, 10));
      }
    } finally {
      await store.close();
    }
  });
});

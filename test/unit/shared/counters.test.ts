import { CountedVectorStore } from '../../../shared/adapters/counted-vector-index';
import { LocalVectorStore } from '../../../shared/adapters/local-vector-index';
import { COUNTER_SHARDS, StoredCounters } from '../../../shared/counters';
import { InMemoryObjectStore } from '../../support/fakes';

describe('StoredCounters', () => {
  it('adds concurrently without losing updates (compare-and-set on sharded objects)', async () => {
    const store = new InMemoryObjectStore();
    const counters = new StoredCounters(store, 'artifacts');
    await Promise.all(Array.from({ length: 60 }, (_, i) => counters.add('c', i % 3 === 0 ? -1 : 2)));
    expect(await counters.read('c')).toBe(20 * -1 + 40 * 2);
    const shards = [];
    for await (const o of store.list('artifacts', 'counts/c/')) shards.push(o.key);
    expect(shards.length).toBeLessThanOrEqual(COUNTER_SHARDS);
  });

  it('counts a member once however often it joins, and uncounts only members', async () => {
    const counters = new StoredCounters(new InMemoryObjectStore(), 'artifacts');
    expect(await counters.join('c', 'img1')).toBe(true);
    expect(await counters.join('c', 'img1')).toBe(false);
    expect(await counters.leave('c', 'img1')).toBe(true);
    expect(await counters.leave('c', 'img1')).toBe(false);
  });

  it('seeds a counter that was never written from a listing, once', async () => {
    const counters = new StoredCounters(new InMemoryObjectStore(), 'artifacts');
    const seed = jest.fn(async () => 41);
    expect(await counters.read('legacy', seed)).toBe(41);
    await counters.add('legacy', 1);
    expect(await counters.read('legacy', seed)).toBe(42);
    expect(seed).toHaveBeenCalledTimes(1);
  });
});

describe('CountedVectorStore', () => {
  it('keeps an index size equal to its number of distinct vectors through puts, re-puts and deletes', async () => {
    const dir = await import('node:fs/promises').then((fs) => fs.mkdtemp(`${require('node:os').tmpdir()}/counted-`));
    const inner = new LocalVectorStore(dir);
    const store = new CountedVectorStore(inner, new StoredCounters(new InMemoryObjectStore(), 'artifacts'));
    const index = await store.ensureIndex('emb-v1', 2);
    const rec = (id: string) => ({ id, vector: Float32Array.from([1, 0]), metadata: { key: id, modelVersion: 'v1' } });
    await index.put([rec('a'), rec('b')]);
    await index.put([rec('a'), rec('c')]);
    await index.delete(['b', 'missing']);
    await index.delete(['b']);
    expect(await index.count()).toBe(2);
    const listed = [];
    for await (const id of index.listIds()) listed.push(id);
    expect(listed.sort()).toEqual(['a', 'c']);
    await inner.close();
  });
});

/**
 * A VectorStore whose indexes keep their size in stored counters (shared/counters.ts), for vector
 * stores that can only count by listing every vector (S3 Vectors): `count()` then costs eight GETs
 * instead of one ListVectors page per thousand vectors. Puts count new ids once (membership
 * markers), deletes uncount the ids that were members.
 */
import { type CountSink, indexCounter, type StoredCounters } from '../counters';
import type { VectorIndex, VectorMatch, VectorQuery, VectorRecord, VectorStore } from '../ports/vector-index';

class CountedVectorIndex implements VectorIndex {
  private readonly counter: string;

  constructor(
    private readonly inner: VectorIndex,
    private readonly counters: StoredCounters,
    private readonly sink: CountSink,
  ) {
    this.counter = indexCounter(inner.name);
  }

  get name(): string {
    return this.inner.name;
  }

  async put(records: VectorRecord[]): Promise<void> {
    await this.inner.put(records);
    let added = 0;
    for (const r of records) if (await this.counters.join(this.counter, r.id)) added += 1;
    await this.sink.add(this.counter, added);
  }

  async delete(ids: string[]): Promise<void> {
    await this.inner.delete(ids);
    let removed = 0;
    for (const id of new Set(ids)) if (await this.counters.leave(this.counter, id)) removed += 1;
    await this.sink.add(this.counter, -removed);
  }

  get(ids: string[]): Promise<VectorRecord[]> {
    return this.inner.get(ids);
  }

  query(q: VectorQuery): Promise<VectorMatch[]> {
    return this.inner.query(q);
  }

  listIds(): AsyncIterable<string> {
    return this.inner.listIds();
  }

  count(): Promise<number> {
    return this.counters.read(this.counter, () => this.inner.count());
  }
}

export class CountedVectorStore implements VectorStore {
  constructor(
    private readonly inner: VectorStore,
    private readonly counters: StoredCounters,
    /** Where size changes go: the counters themselves by default, or a batch (PendingCounts) flushed by the caller. */
    private readonly sink: CountSink = counters,
  ) {}

  async ensureIndex(name: string, dimension: number): Promise<VectorIndex> {
    return new CountedVectorIndex(await this.inner.ensureIndex(name, dimension), this.counters, this.sink);
  }

  async openIndex(name: string): Promise<VectorIndex | undefined> {
    const index = await this.inner.openIndex(name);
    return index ? new CountedVectorIndex(index, this.counters, this.sink) : undefined;
  }

  deleteIndex(name: string): Promise<void> {
    return this.inner.deleteIndex(name);
  }

  listIndexes(): Promise<string[]> {
    return this.inner.listIndexes();
  }
}

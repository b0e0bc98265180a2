/**
 * Stored counters, so that "how many" costs O(1) requests whatever the size of the corpus: a
 * counter is 8 shard objects (`counts/<counter>/shard-<n>.json`) updated with compare-and-set
 * (conditional writes), read by summing the shards. Membership markers
 * (`counts/<counter>/members/<imageId>`, created with If-None-Match) make counting idempotent:
 * an image counts once however often it is re-embedded or its message is redelivered.
 */
import { z } from 'zod';
import { artifactKeys } from './artifact-keys';
import { parseJsonObject } from './json';
import type { ObjectStore } from './ports/object-store';

export const COUNTER_SHARDS = 8;
const ShardSchema = z.object({ value: z.number().int() });

export class StoredCounters {
  constructor(
    private readonly store: ObjectStore,
    private readonly bucket: string,
  ) {}

  /** Adds `delta` to one shard (chosen at random, to spread concurrent writers). */
  async add(counter: string, delta: number): Promise<void> {
    if (delta === 0) return;
    const key = artifactKeys.counterShard(counter, Math.floor(Math.random() * COUNTER_SHARDS));
    for (let attempt = 0; attempt < 50; attempt += 1) {
      const head = await this.store.head(this.bucket, key);
      if (!head) {
        if (await this.store.putIf(this.bucket, key, JSON.stringify({ value: delta }), { ifAbsent: true }, 'application/json')) return;
        continue;
      }
      const body = await this.store.get(this.bucket, key);
      if (!body) continue;
      const value = parseJsonObject(body, ShardSchema).value + delta;
      if (await this.store.putIf(this.bucket, key, JSON.stringify({ value }), { ifMatch: head.etag }, 'application/json')) return;
    }
    throw new Error(`counter ${counter}: too many concurrent updates; retrying the message`);
  }

  /**
   * The counter's value: one GET per shard, never a listing. A counter that was never written (data
   * from before counters existed) is seeded once from `seed` (a listing), then kept up to date.
   */
  async read(counter: string, seed?: () => Promise<number>): Promise<number> {
    const shards = await Promise.all(Array.from({ length: COUNTER_SHARDS }, (_, i) => this.store.get(this.bucket, artifactKeys.counterShard(counter, i))));
    if (seed && shards.every((b) => b === undefined)) {
      const value = await seed();
      if (await this.store.putIf(this.bucket, artifactKeys.counterShard(counter, 0), JSON.stringify({ value }), { ifAbsent: true }, 'application/json'))
        return value;
      return this.read(counter);
    }
    return shards.reduce((sum, body) => sum + (body ? parseJsonObject(body, ShardSchema).value : 0), 0);
  }

  /** Records `imageId` as a member; true when it was not one yet (then count it). */
  async join(counter: string, imageId: string): Promise<boolean> {
    return this.store.putIf(this.bucket, artifactKeys.indexMember(counter, imageId), '', { ifAbsent: true });
  }

  /** Removes `imageId`; true when it was a member (then uncount it). */
  async leave(counter: string, imageId: string): Promise<boolean> {
    const key = artifactKeys.indexMember(counter, imageId);
    if (!(await this.store.head(this.bucket, key))) return false;
    await this.store.delete(this.bucket, key);
    return true;
  }
}

/** The counter of a vector index's size. */
export const indexCounter = (indexName: string) => `index-${indexName}`;
export const QUARANTINE_COUNTER = 'quarantined';

/** Where counter changes go: straight to the stored counters, or batched (PendingCounts). */
export interface CountSink {
  add(counter: string, delta: number): Promise<void>;
}

/**
 * Counter changes gathered over a batch of messages and written once per counter by `flush()` (one
 * compare-and-set instead of one per image: the queue functions call it after each batch).
 */
export class PendingCounts implements CountSink {
  private readonly deltas = new Map<string, number>();

  constructor(private readonly counters: StoredCounters) {}

  async add(counter: string, delta: number): Promise<void> {
    this.deltas.set(counter, (this.deltas.get(counter) ?? 0) + delta);
  }

  async flush(): Promise<void> {
    const entries = [...this.deltas.entries()];
    this.deltas.clear();
    await Promise.all(entries.map(([counter, delta]) => this.counters.add(counter, delta)));
  }
}

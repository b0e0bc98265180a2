/**
 * A bucket's keys in S3 order, kept sorted as they change: sorted chunks of at most 2 x CHUNK keys,
 * so adding or removing a key costs two binary searches and a splice of one chunk, whatever the
 * bucket's size. (Sorting every key again after a change, as the server once did before a listing,
 * cost about a second per listing at 700,000 keys: most of the stack's CPU during a large ingest.)
 *
 * `from` walks the keys lazily and stays correct while keys change under it: when the set changed
 * since its last step, it finds its place again after the last key it returned.
 */
import { compareKeys, lowerBound } from './key-order';

const CHUNK = 1024;

export class SortedKeys {
  private chunks: string[][] = [];
  private count = 0;
  /** Bumped by every change, so a walk can tell that its position may have moved. */
  private version = 0;

  /** Keys given in any order (duplicates allowed), sorted once. */
  static of(keys: Iterable<string>): SortedKeys {
    const sorted = [...new Set(keys)].sort(compareKeys);
    const out = new SortedKeys();
    for (let i = 0; i < sorted.length; i += CHUNK) out.chunks.push(sorted.slice(i, i + CHUNK));
    out.count = sorted.length;
    return out;
  }

  get size(): number {
    return this.count;
  }

  /** Adds `key`; false when it is there already. */
  add(key: string): boolean {
    if (this.chunks.length === 0) {
      this.chunks.push([key]);
      this.count = 1;
      this.version += 1;
      return true;
    }
    // The first chunk whose last key is not before `key`; past the end, the last chunk takes it.
    const c = Math.min(this.chunkFor(key), this.chunks.length - 1);
    const chunk = this.chunks[c]!;
    const i = lowerBound(chunk, key);
    if (i < chunk.length && chunk[i] === key) return false;
    chunk.splice(i, 0, key);
    if (chunk.length > 2 * CHUNK) this.chunks.splice(c, 1, chunk.slice(0, CHUNK), chunk.slice(CHUNK));
    this.count += 1;
    this.version += 1;
    return true;
  }

  /** Removes `key`; false when it was not there. */
  delete(key: string): boolean {
    const c = this.chunkFor(key);
    const chunk = this.chunks[c];
    if (!chunk) return false;
    const i = lowerBound(chunk, key);
    if (chunk[i] !== key) return false;
    chunk.splice(i, 1);
    if (chunk.length === 0) this.chunks.splice(c, 1);
    this.count -= 1;
    this.version += 1;
    return true;
  }

  /** Keys not before `start` (or after it, with `exclusive`), in S3 order. */
  *from(start: string, exclusive = false): Generator<string> {
    let version = this.version;
    let [c, i] = this.seek(start, exclusive);
    while (c < this.chunks.length) {
      const chunk = this.chunks[c]!;
      if (i >= chunk.length) {
        c += 1;
        i = 0;
        continue;
      }
      const key = chunk[i]!;
      yield key;
      if (version !== this.version) {
        version = this.version;
        [c, i] = this.seek(key, true);
      } else {
        i += 1;
      }
    }
  }

  /** Index of the first chunk whose last key is not before `key` (the chunk count when there is none). */
  private chunkFor(key: string): number {
    let lo = 0;
    let hi = this.chunks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const chunk = this.chunks[mid]!;
      if (compareKeys(chunk[chunk.length - 1]!, key) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private seek(start: string, exclusive: boolean): [number, number] {
    const c = this.chunkFor(start);
    const chunk = this.chunks[c];
    if (!chunk) return [c, 0];
    let i = lowerBound(chunk, start);
    if (exclusive && chunk[i] === start) i += 1;
    return [c, i];
  }
}

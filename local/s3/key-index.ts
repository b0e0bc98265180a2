/**
 * A bucket's keys and the journal offset of each one's newest record, with memory that does not
 * grow with the bucket: recent changes in memory (a memtable of at most `memtableKeys` keys, or a
 * fraction of the bucket at very large sizes), everything older in a sorted run file on disk
 * (`keys.run`), of which memory holds only the first key of each 4 KB block.
 *
 * The run is a cache of the journal, never the only copy of anything: it records the journal
 * position it reflects (every record before it is in the run or superseded there) and which journal
 * file it belongs to. On open, the journal's records from that position on are applied on top of it;
 * a run that does not match the journal (another file, a position past its end, an entry that does
 * not point at its key's record) is ignored and rebuilt from the whole journal.
 *
 * Flushing: when the memtable is full it is frozen (a new one takes the writes) and merged with the
 * current run into a new run file in the background, which then replaces the old one. Lookups and
 * walks consult the memtable, the frozen memtable and the run, newest first. The freeze happens in
 * a macrotask, where every append the journal has resolved has been applied (`AppendLog.settled`),
 * so the position recorded is one below which nothing is missing.
 *
 * A journal compaction moves every record: the memtables' offsets are rewritten in place, the run's
 * are translated on the fly (`relocate`) until a flush writes them anew, which follows at once.
 */
import { closeSync, openSync, statSync } from 'node:fs';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { compareKeys } from './key-order';
import { SortedKeys } from './sorted-keys';
import { frame, frameLength, readFrameSync, replay, writeFrames } from '../../shared/storage/append-log';

/** A key removed since the run (or the frozen memtable) was written. */
const DELETED = -1;
/** Memtable keys before a flush (at least; a bucket of many millions of keys flushes at RUN_FRACTION of its size). */
export const MEMTABLE_KEYS = 16_384;
const RUN_FRACTION = 1 / 32;
/** Bytes of keys and offsets per block of the run. */
const BLOCK_BYTES = 4096;
/** Bytes per write while writing a run. */
const WRITE_CHUNK = 1024 * 1024;
/** Entries of a loaded run checked against the journal. */
const SPOT_CHECKS = 64;

/** Which journal file a run belongs to: a compaction puts a new file (a new inode) in its place. */
export interface JournalIdentity {
  ino: number;
  birthtimeMs: number;
}

export function journalIdentity(path: string): JournalIdentity | undefined {
  try {
    const st = statSync(path);
    return { ino: st.ino, birthtimeMs: st.birthtimeMs };
  } catch {
    return undefined;
  }
}

interface RunHeader {
  v: 1;
  count: number;
  blocks: number;
  /** Journal records before this offset are reflected in the run. */
  position: number;
  journal: JournalIdentity;
}

class Memtable {
  readonly offsets = new Map<string, number>();
  readonly keys = new SortedKeys();

  set(key: string, offset: number): void {
    if (!this.offsets.has(key)) this.keys.add(key);
    this.offsets.set(key, offset);
  }

  remove(key: string): void {
    if (this.offsets.delete(key)) this.keys.delete(key);
  }

  *entries(start: string, exclusive: boolean): Generator<[string, number]> {
    for (const key of this.keys.from(start, exclusive)) {
      const offset = this.offsets.get(key);
      if (offset !== undefined) yield [key, offset];
    }
  }
}

/** A run file: blocks of (u16 key length, UTF-8 key, f64 offset) in key order, each a CRC-checked frame. */
class KeyRun {
  private fd: number;

  private constructor(
    readonly path: string,
    readonly header: RunHeader,
    /** The first key of each block, and where the block's frame is and how long its payload is. */
    private readonly firstKeys: string[],
    private readonly blockAt: Float64Array,
    private readonly blockLength: Uint32Array,
  ) {
    this.fd = openSync(path, 'r');
  }

  get count(): number {
    return this.header.count;
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }

  /** Reads a run file; undefined when it is missing, torn or corrupt. */
  static async load(path: string): Promise<KeyRun | undefined> {
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch {
      return undefined;
    }
    try {
      let header: RunHeader | undefined;
      const firstKeys: string[] = [];
      const at: number[] = [];
      const lengths: number[] = [];
      let entries = 0;
      let bad = false;
      await replay(handle, (payload, offset) => {
        if (!header) {
          header = JSON.parse(payload.toString('utf8')) as RunHeader;
          return;
        }
        const keys = blockKeys(payload);
        if (keys.length === 0) bad = true;
        entries += keys.length;
        firstKeys.push(payload.toString('utf8', keys[0]!.start, keys[0]!.end));
        at.push(offset);
        lengths.push(payload.length);
      });
      if (bad || !header || header.v !== 1 || header.blocks !== firstKeys.length || header.count !== entries) return undefined;
      return new KeyRun(path, header, firstKeys, Float64Array.from(at), Uint32Array.from(lengths));
    } catch {
      return undefined;
    } finally {
      await handle.close();
    }
  }

  /** Writes `entries` (in key order) as a run file at `path`, fsynced, through a temporary file. */
  static async write(path: string, entries: Iterable<[string, number]>, position: number, journal: JournalIdentity): Promise<KeyRun> {
    const tmp = `${path}.tmp`;
    const out = await open(tmp, 'w');
    const firstKeys: string[] = [];
    const at: number[] = [];
    const lengths: number[] = [];
    let count = 0;
    try {
      // The header goes first with a placeholder count; the real header is written over it (same length) at the end.
      const headerOf = (c: number, b: number) =>
        Buffer.from(JSON.stringify({ v: 1, count: c, blocks: b, position, journal } satisfies RunHeader).padEnd(256, ' '));
      /** The header, then the blocks of entries, noting where each block's frame lands. */
      function* payloads(): Generator<Buffer> {
        const header = headerOf(0, 0);
        let written = frameLength(header.length);
        yield header;
        let block: Buffer[] = [];
        let blockBytes = 0;
        const endBlock = () => {
          const payload = Buffer.concat(block);
          at.push(written);
          lengths.push(payload.length);
          written += frameLength(payload.length);
          block = [];
          blockBytes = 0;
          return payload;
        };
        for (const [key, offset] of entries) {
          const k = Buffer.from(key, 'utf8');
          const e = Buffer.allocUnsafe(2 + k.length + 8);
          e.writeUInt16LE(k.length, 0);
          k.copy(e, 2);
          e.writeDoubleLE(offset, 2 + k.length);
          if (blockBytes + e.length > BLOCK_BYTES) yield endBlock();
          if (block.length === 0) firstKeys.push(key);
          block.push(e);
          blockBytes += e.length;
          count += 1;
        }
        if (block.length > 0) yield endBlock();
      }
      await writeFrames(out, payloads(), WRITE_CHUNK);
      const head = frame(headerOf(count, firstKeys.length));
      await out.write(head, 0, head.length, 0);
      await out.datasync();
    } catch (err) {
      await out.close();
      await rm(tmp, { force: true });
      throw err;
    }
    await out.close();
    await rename(tmp, path);
    return new KeyRun(path, { v: 1, count, blocks: firstKeys.length, position, journal }, firstKeys, Float64Array.from(at), Uint32Array.from(lengths));
  }

  /** The offset recorded for `key`, if the run has it (one positioned read of a block). */
  get(key: string): number | undefined {
    const b = this.blockFor(key);
    if (b < 0) return undefined;
    const payload = this.readBlock(b);
    const target = Buffer.from(key, 'utf8');
    const keys = blockKeys(payload);
    let lo = 0;
    let hi = keys.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const { start, end } = keys[mid]!;
      const c = target.compare(payload, start, end);
      if (c === 0) return payload.readDoubleLE(end);
      if (c < 0) hi = mid - 1;
      else lo = mid + 1;
    }
    return undefined;
  }

  /** Entries not before `start` (after it, with `exclusive`), in key order, a block at a time. */
  *entries(start: string, exclusive: boolean): Generator<[string, number]> {
    for (let b = Math.max(0, this.blockFor(start)); b < this.firstKeys.length; b += 1) {
      const payload = this.readBlock(b);
      for (const { start: s, end: e } of blockKeys(payload)) {
        const key = payload.toString('utf8', s, e);
        const c = compareKeys(key, start);
        if (c < 0 || (c === 0 && exclusive)) continue;
        yield [key, payload.readDoubleLE(e)];
      }
    }
  }

  /** A few entries spread over the run, to check against the journal. */
  sample(n: number): [string, number][] {
    const out: [string, number][] = [];
    const blocks = this.firstKeys.length;
    for (let i = 0; i < Math.min(n, blocks); i += 1) {
      const payload = this.readBlock(Math.floor((i * blocks) / Math.min(n, blocks)));
      const keys = blockKeys(payload);
      const { start, end } = keys[i % keys.length]!;
      out.push([payload.toString('utf8', start, end), payload.readDoubleLE(end)]);
    }
    return out;
  }

  /** The last block whose first key is not after `key` (-1 when `key` is before them all). */
  private blockFor(key: string): number {
    let lo = 0;
    let hi = this.firstKeys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareKeys(this.firstKeys[mid]!, key) <= 0) lo = mid + 1;
      else hi = mid;
    }
    return lo - 1;
  }

  private readBlock(b: number): Buffer {
    if (this.fd < 0) throw new Error(`key run ${this.path} is closed`);
    return readFrameSync(this.fd, this.blockAt[b]!, this.blockLength[b]!);
  }
}

/** Where each entry's key starts and ends in a block (its offset follows the key). */
function blockKeys(payload: Buffer): { start: number; end: number }[] {
  const out: { start: number; end: number }[] = [];
  for (let p = 0; p + 2 <= payload.length; ) {
    const start = p + 2;
    const end = start + payload.readUInt16LE(p);
    if (end + 8 > payload.length) throw new Error('a key run block is cut short');
    out.push({ start, end });
    p = end + 8;
  }
  return out;
}

export interface KeyIndexOptions {
  /** Keys changed in memory before a flush to the run (tests lower it). */
  memtableKeys?: number;
}

/** The journal a key index follows: where it is, and how far every append has been applied. */
export interface JournalView {
  path: string;
  /** Every record before this offset has been applied to the index (`AppendLog.settled`). */
  settled(): number;
  /** The record `payload` is a version of `key` (not a tombstone). */
  isRecordOf(payload: Buffer, key: string): boolean;
}

export class KeyIndex {
  private active = new Memtable();
  private frozen: Memtable | undefined;
  private run: KeyRun | undefined;
  /** Maps the run's offsets into the journal after a compaction, until the run is written anew. */
  private translate: ((offset: number) => number) | undefined;
  private count: number;
  /** Bumped whenever the set of keys or where they live changes, so a walk finds its place again. */
  private version = 0;
  private flushing: Promise<void> | undefined;
  /** No flush starts while held: during the journal's replay (until `release`) and during a compaction. */
  private held = true;
  private closed = false;

  private constructor(
    private readonly runPath: string,
    private readonly journal: JournalView,
    private readonly memtableKeys: number,
    run: KeyRun | undefined,
  ) {
    this.run = run;
    this.count = run?.count ?? 0;
  }

  /**
   * Loads the run at `runPath` if it matches the journal (checked before the journal is replayed),
   * and says from which journal offset on the replay must be applied (`position`).
   */
  static async load(runPath: string, journal: JournalView, { memtableKeys = MEMTABLE_KEYS }: KeyIndexOptions = {}): Promise<KeyIndex> {
    let run = await KeyRun.load(runPath);
    if (run && !KeyIndex.matches(run, journal)) {
      console.warn(`[s3] ${runPath} does not match its journal: rebuilding it from the journal`);
      run.close();
      run = undefined;
    }
    if (!run) await rm(runPath, { force: true });
    return new KeyIndex(runPath, journal, memtableKeys, run);
  }

  private static matches(run: KeyRun, journal: JournalView): boolean {
    const id = journalIdentity(journal.path);
    const { journal: was, position } = run.header;
    if (!id || id.ino !== was.ino || id.birthtimeMs !== was.birthtimeMs) return false;
    if (position > statSync(journal.path).size) return false;
    const fd = openSync(journal.path, 'r');
    try {
      return run.sample(SPOT_CHECKS).every(([key, offset]) => offset < position && journal.isRecordOf(readFrameSync(fd, offset), key));
    } catch {
      return false;
    } finally {
      closeSync(fd);
    }
  }

  /** Journal records from this offset on are not in the run: the replay applies them. */
  get position(): number {
    return this.run?.header.position ?? 0;
  }

  get size(): number {
    return this.count;
  }

  get(key: string): number | undefined {
    const a = this.active.offsets.get(key) ?? this.frozen?.offsets.get(key);
    if (a !== undefined) return a === DELETED ? undefined : a;
    const r = this.run?.get(key);
    return r === undefined || !this.translate ? r : this.translate(r);
  }

  /** Records `key`'s newest record at `offset`; true when the key existed before. */
  set(key: string, offset: number): boolean {
    const existed = this.get(key) !== undefined;
    this.active.set(key, offset);
    if (!existed) {
      this.count += 1;
      this.version += 1;
    }
    this.maybeFlush();
    return existed;
  }

  /** Removes `key`; false when it did not exist. */
  delete(key: string): boolean {
    if (this.get(key) === undefined) return false;
    if (this.frozen || this.run) this.active.set(key, DELETED);
    else this.active.remove(key);
    this.count -= 1;
    this.version += 1;
    this.maybeFlush();
    return true;
  }

  /** Keys not before `start` (after it, with `exclusive`), in S3 order, lazily; safe while keys change. */
  *from(start: string, exclusive = false): Generator<string> {
    for (const [key] of this.entries(start, exclusive)) yield key;
  }

  /** Live keys with their offsets from `start` on, in S3 order, lazily; safe while keys change. */
  *entries(start: string, exclusive = false): Generator<[string, number]> {
    let cursor = start;
    let excl = exclusive;
    for (;;) {
      const version = this.version;
      // Newest source first: on equal keys it decides. The run's offsets may need translating.
      const translate = this.translate;
      const sources = [
        { it: this.active.entries(cursor, excl), translate: undefined },
        this.frozen && { it: this.frozen.entries(cursor, excl), translate: undefined },
        this.run && { it: this.run.entries(cursor, excl), translate },
      ]
        .filter((s) => !!s)
        .map((s) => ({ ...s, head: s.it.next() }));
      for (;;) {
        let min: string | undefined;
        let offset = 0;
        for (const s of sources) {
          if (s.head.done) continue;
          const [k, o] = s.head.value;
          if (min === undefined || compareKeys(k, min) < 0) {
            min = k;
            offset = o === DELETED || !s.translate ? o : s.translate(o);
          }
        }
        if (min === undefined) return;
        for (const s of sources) if (!s.head.done && s.head.value[0] === min) s.head = s.it.next();
        if (offset === DELETED) continue;
        yield [min, offset];
        cursor = min;
        excl = true;
        if (this.version !== version) break; // the sources may have moved: seek again after `min`
      }
    }
  }

  /** The offsets of the live keys' records before `end`, sorted (for a journal compaction). */
  offsetsBefore(end: number): Float64Array {
    const out = new Float64Array(this.count);
    let n = 0;
    for (const [key, offset] of this.entries('')) {
      if (n === out.length) throw new Error(`more live keys than the ${this.count} counted (at ${key})`);
      if (offset < end) out[n++] = offset;
    }
    return out.subarray(0, n).sort();
  }

  /**
   * The journal was compacted: every live offset `o` is now `move(o)`. Memtables are rewritten now;
   * the run's offsets are translated as they are read until the next flush writes them anew.
   */
  relocate(move: (offset: number) => number): void {
    for (const table of [this.active, this.frozen]) {
      if (!table) continue;
      for (const [key, offset] of table.offsets) if (offset !== DELETED) table.offsets.set(key, move(offset));
    }
    if (this.run) {
      const before = this.translate;
      this.translate = before ? (o) => move(before(o)) : move;
    }
    this.version += 1;
  }

  /** Waits for a flush in progress; none starts until `release` (a journal compaction holds it). */
  async hold(): Promise<void> {
    this.held = true;
    while (this.flushing) await this.flushing;
  }

  /** Waits for a flush in progress. */
  async idle(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  release(): void {
    this.held = false;
    // After a compaction the run is written at once, with its offsets as they are now.
    if (this.translate) this.startFlush();
    else this.maybeFlush();
  }

  async close(): Promise<void> {
    this.closed = true;
    while (this.flushing) await this.flushing.catch(() => undefined);
    this.run?.close();
  }

  private maybeFlush(): void {
    const limit = Math.max(this.memtableKeys, Math.floor(this.count * RUN_FRACTION));
    if (this.active.offsets.size >= limit) this.startFlush();
  }

  private startFlush(): void {
    if (this.flushing || this.held || this.closed) return;
    this.flushing = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.writeRun())
      .catch((err) => console.error(`[s3] writing ${this.runPath} failed (the journal still has every key): ${(err as Error).message}`))
      .finally(() => {
        this.flushing = undefined;
        if (!this.closed && !this.held) this.maybeFlush();
      });
  }

  private async writeRun(): Promise<void> {
    if (this.closed || this.held) return;
    // A macrotask: every append the journal has resolved has been applied to the memtable.
    const position = this.journal.settled();
    const identity = journalIdentity(this.journal.path);
    if (!identity) throw new Error(`${this.journal.path} is missing`);
    const frozen = this.active;
    this.frozen = frozen;
    this.active = new Memtable();
    this.version += 1;
    const old = this.run;
    const translate = this.translate;
    const merged = function* (): Generator<[string, number]> {
      const a = frozen.entries('', false);
      const b = old?.entries('', false);
      let x = a.next();
      let y = b?.next();
      while (!x.done || (y && !y.done)) {
        const c = x.done ? 1 : !y || y.done ? -1 : compareKeys(x.value[0], y.value[0]);
        if (c <= 0) {
          if (x.value![1] !== DELETED) yield x.value as [string, number];
          if (c === 0) y = b!.next();
          x = a.next();
        } else {
          const [k, o] = y!.value as [string, number];
          yield [k, translate ? translate(o) : o];
          y = b!.next();
        }
      }
    };
    try {
      const run = await KeyRun.write(this.runPath, merged(), position, identity);
      this.run = run;
      this.translate = undefined;
      old?.close();
    } finally {
      // Whether or not the new run was written, the frozen changes go back where lookups find them.
      if (this.run === old) for (const [k, o] of frozen.offsets) if (!this.active.offsets.has(k)) this.active.set(k, o);
      this.frozen = undefined;
      this.version += 1;
    }
  }
}

/**
 * The embedded S3 server's durable storage: buckets, objects and their metadata under a data
 * directory, per-key locks, conditional writes, ordered listing and object events.
 *
 * Each object is a metadata record in its bucket's journal, with its bytes either in the same record
 * (small objects, at most `inlineMaxBytes`) or in a data file of its own. A write collects its bytes
 * first (a body sink: memory, spilling to a new fsynced file past the inline limit), then, under the
 * key's lock, checks the request's conditions and appends the record (group-committed with
 * concurrent writes): a crash leaves either the old or the new version, and data files no record
 * refers to are removed at the next start. A small object so costs no file of its own and no fsync
 * of its own: concurrent writes share the journal's.
 * The object event is handed to `onEvent` under the same lock, so events of one key are delivered
 * in write order, and a write is acknowledged only once its event is durably queued.
 */
import { createHash, randomUUID } from 'node:crypto';
import { closeSync, existsSync, openSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { S3EventInput } from '../../shared/s3-event';
import type { ChecksumAlgorithm } from './checksums';
import { S3Error, noSuchBucket, noSuchKey, preconditionFailed } from './errors';
import { compareKeys } from './key-order';
import { KeyIndex, type KeyIndexOptions } from './key-index';
import { listPage, type ListOptions, type ListPage } from './listing';
import { AppendLog, frameLength, readFrameSync } from '../../shared/storage/append-log';
import { BodySink, writeAll, type ObjectBytes } from './sinks';

/** Headers S3 stores with an object and returns on GET and HEAD. */
export const STORED_HEADERS = ['cache-control', 'content-disposition', 'content-encoding', 'content-language', 'expires'] as const;

export interface ObjectAttributes {
  contentType: string;
  /** x-amz-meta-* values, names without the prefix. */
  userMetadata: Record<string, string>;
  headers?: Partial<Record<(typeof STORED_HEADERS)[number], string>>;
  checksums?: Partial<Record<ChecksumAlgorithm, string>>;
}

export interface StoredObject extends ObjectAttributes {
  key: string;
  size: number;
  etag: string;
  lastModified: string;
  /** The data file holding the bytes; absent when they are inline, in the object's journal record. */
  dataFile?: string;
  /** Sizes of the parts of an object completed by a multipart upload, in part order. */
  parts?: number[];
}

/** Preconditions of a write, as in If-Match / If-None-Match (an ETag, quoted or not, or '*'). */
export interface WriteCondition {
  ifMatch?: string;
  ifNoneMatch?: string;
}

/** Preconditions of a delete; a delete of a missing key succeeds whatever they say. */
export interface DeleteCondition {
  ifMatch?: string;
  ifMatchLastModifiedTime?: Date;
  ifMatchSize?: number;
}

export type ObjectEventName = S3EventInput['eventName'];

const hashKey = (key: string) => createHash('sha256').update(key, 'utf8').digest('hex');
export const unquote = (etag: string) => etag.trim().replace(/^W\//, '').replace(/^"|"$/g, '');

/** S3 bucket naming rules (general purpose buckets). */
export function validBucketName(name: string): boolean {
  return (
    /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name) &&
    !/\.\.|\.-|-\./.test(name) &&
    !/^\d{1,3}(\.\d{1,3}){3}$/.test(name) &&
    !name.startsWith('xn--') &&
    !name.endsWith('-s3alias')
  );
}

/** Metadata of this many recently used objects per bucket stays in memory; the rest is read from disk. */
export const METADATA_CACHE_ENTRIES = 4096;

/** A bucket's metadata journal: one record per object write (its metadata) or delete (a tombstone). */
const META_LOG = 'meta.log';
/** The bucket's keys and their journal offsets, sorted on disk (a cache of the journal: key-index.ts). */
const KEY_RUN = 'keys.run';
/** Compact the journal once superseded records outnumber live ones and at least this many. */
const COMPACT_MIN_DEAD = 10_000;

/** Objects of at most this many bytes are kept in their journal record instead of a data file. */
export const INLINE_MAX_BYTES = 32 * 1024;

type MetaRecord = { k: string; m: StoredObject } | { k: string; d: 1 };

/** The first byte of a record that carries the object's bytes: a JSON-only record starts with '{'. */
const INLINE_TAG = 0;

/** A journal record: the JSON, or INLINE_TAG, u32le length of the JSON, the JSON, the object's bytes. */
function encodeRecord(rec: MetaRecord, inline?: Buffer): Buffer {
  const json = Buffer.from(JSON.stringify(rec), 'utf8');
  if (!inline) return json;
  const head = Buffer.allocUnsafe(5);
  head[0] = INLINE_TAG;
  head.writeUInt32LE(json.length, 1);
  return Buffer.concat([head, json, inline]);
}

function decodeRecord(payload: Buffer): { rec: MetaRecord; inline?: Buffer } {
  if (payload[0] !== INLINE_TAG) return { rec: JSON.parse(payload.toString('utf8')) as MetaRecord };
  const end = 5 + payload.readUInt32LE(1);
  return { rec: JSON.parse(payload.toString('utf8', 5, end)) as MetaRecord, inline: payload.subarray(end) };
}

export interface BucketOptions extends KeyIndexOptions {
  /** Objects whose metadata stays in memory (most recently used). */
  metadataCacheEntries?: number;
  /** Superseded journal records before a compaction is considered (tests lower it). */
  compactMinDead?: number;
  /** Largest object kept in its journal record rather than a data file (0: only empty objects). */
  inlineMaxBytes?: number;
}

/**
 * A bucket's objects. Each object is a record in the bucket's journal (`meta.log`, an AppendLog:
 * group-committed, so concurrent writes share one fsync): its metadata, and its bytes too when it is
 * small (otherwise they are in a data file of its own). Memory holds only each key with the journal
 * offset of its newest record (for listing, existence and reading it back) and a bounded cache of
 * recently used metadata; a miss is one
 * positioned read. So memory grows by a key per object, not by its metadata (measured: 480 heap
 * bytes an object with all metadata in memory). The journal is compacted in the background when
 * superseded records outnumber live ones.
 *
 * Buckets written before the journal kept a metadata file per object under `meta/`: opening one
 * moves those into the journal (made durable before the files are removed).
 */
export class Bucket {
  private index!: KeyIndex;
  private readonly cache = new Map<string, StoredObject>();
  private readFd = -1;
  private deadRecords = 0;
  private compacting: Promise<void> | undefined;

  private constructor(
    readonly name: string,
    readonly dir: string,
    readonly createdAt: string,
    /** The LocationConstraint the bucket was created with ('' for us-east-1). */
    readonly location: string,
    private readonly cacheEntries: number,
    private log: AppendLog | undefined,
    private readonly compactMinDead: number,
  ) {}

  /**
   * Opens a bucket's metadata (creating an empty journal if there is none) and returns it with the
   * data file of every live object, so the caller can tell leftovers of interrupted writes.
   */
  static async open(
    name: string,
    dir: string,
    createdAt: string,
    location = '',
    { metadataCacheEntries = METADATA_CACHE_ENTRIES, compactMinDead = COMPACT_MIN_DEAD, memtableKeys }: BucketOptions = {},
  ): Promise<{ bucket: Bucket; dataFiles: Set<string> }> {
    const bucket = new Bucket(name, dir, createdAt, location, metadataCacheEntries, undefined, compactMinDead);
    const dataFileOf = new Map<string, string>();
    let records = 0;
    const path = join(dir, META_LOG);
    const index = await KeyIndex.load(
      join(dir, KEY_RUN),
      {
        path,
        settled: () => bucket.journal().settled,
        isRecordOf: (payload, key) => {
          const { rec } = decodeRecord(payload);
          return rec.k === key && !('d' in rec);
        },
      },
      { memtableKeys },
    );
    bucket.index = index;
    const from = index.position; // records before it are in the key run already
    bucket.log = await AppendLog.open(path, (payload, offset) => {
      records += 1;
      const { rec } = decodeRecord(payload);
      dataFileOf.delete(rec.k);
      if ('d' in rec) {
        if (offset >= from) index.delete(rec.k);
      } else {
        if (offset >= from) index.set(rec.k, offset);
        if (rec.m.dataFile) dataFileOf.set(rec.k, rec.m.dataFile);
      }
    });
    bucket.readFd = openSync(path, 'r');
    // Buckets from before the journal: a metadata file per object.
    const legacy = join(dir, 'meta');
    if (existsSync(legacy)) {
      const names = await readdir(legacy);
      for (let i = 0; i < names.length; i += 4096) {
        const metas: StoredObject[] = [];
        for (const f of names.slice(i, i + 4096)) {
          if (f.endsWith('.json')) metas.push(JSON.parse(await readFile(join(legacy, f), 'utf8')) as StoredObject);
        }
        const offsets = await bucket.log.append(metas.map((m) => Buffer.from(JSON.stringify({ k: m.key, m } satisfies MetaRecord))));
        metas.forEach((m, j) => {
          index.set(m.key, offsets[j]!);
          if (m.dataFile) dataFileOf.set(m.key, m.dataFile);
        });
        records += metas.length;
      }
      await rm(legacy, { recursive: true, force: true });
    }
    bucket.deadRecords = records - index.size;
    // From here on the memtable flushes to the key run when it is full (after a full replay: now).
    index.release();
    await index.idle();
    return { bucket, dataFiles: new Set(dataFileOf.values()) };
  }

  get size(): number {
    return this.index.size;
  }

  /** The current metadata of `key`: from the cache, else from its journal record (synchronously: one small positioned read). */
  get(key: string): StoredObject | undefined {
    const cached = this.cache.get(key);
    if (cached) {
      this.cache.delete(key); // most recently used last
      this.cache.set(key, cached);
      return cached;
    }
    const offset = this.index.get(key);
    if (offset === undefined) return undefined;
    const { meta } = this.recordAt(key, offset);
    this.remember(meta);
    return meta;
  }

  /**
   * The current version of `key` with its bytes when they are inline (one positioned read of its
   * record), synchronously: nothing can replace the version between the lookup and the read.
   */
  read(key: string): { meta: StoredObject; inline?: Buffer } | undefined {
    const meta = this.get(key);
    if (!meta || meta.dataFile) return meta && { meta };
    const { inline } = this.recordAt(key, this.index.get(key)!, meta.size);
    if (!inline || inline.length !== meta.size) throw new Error(`bucket ${this.name}: the journal record of ${key} does not hold its ${meta.size} bytes`);
    return { meta, inline };
  }

  private recordAt(key: string, offset: number, inlineBytes = 0): { meta: StoredObject; inline?: Buffer } {
    const { rec, inline } = decodeRecord(readFrameSync(this.readFd, offset, 512 + inlineBytes));
    if ('d' in rec || rec.k !== key) throw new Error(`bucket ${this.name}: the journal record at ${offset} is not ${key}'s metadata`);
    return { meta: rec.m, inline };
  }

  *values(): Iterable<StoredObject> {
    for (const key of this.keysFrom('')) {
      const meta = this.get(key);
      if (meta) yield meta;
    }
  }

  /** Keys from `start` on (after it, with `exclusive`) in S3 order, lazily; safe while keys change. */
  keysFrom(start: string, exclusive = false): Iterable<string> {
    return this.index.from(start, exclusive);
  }

  /**
   * Makes `meta` the key's metadata once it is durable in the journal, with the object's bytes in the
   * same record when `inline` is given (callers hold the key's lock).
   */
  async set(meta: StoredObject, inline?: Buffer): Promise<void> {
    const [offset] = await this.journal().append([encodeRecord({ k: meta.key, m: meta }, inline)]);
    if (this.index.set(meta.key, offset!)) this.deadRecords += 1;
    this.cache.delete(meta.key);
    this.remember(meta);
    this.maybeCompact();
  }

  /** Removes a key once its tombstone is durable (callers hold the key's lock). */
  async remove(key: string): Promise<void> {
    if (this.index.get(key) === undefined) return;
    await this.journal().append([encodeRecord({ k: key, d: 1 })]);
    this.cache.delete(key);
    this.index.delete(key);
    this.deadRecords += 2; // the tombstone and the record it ends
    this.maybeCompact();
  }

  /** Waits for a compaction in progress, then closes the journal. */
  async close(): Promise<void> {
    await this.compacting;
    await this.index.close();
    await this.log?.close();
    this.log = undefined;
    if (this.readFd >= 0) closeSync(this.readFd);
    this.readFd = -1;
  }

  private journal(): AppendLog {
    if (!this.log) throw new Error(`bucket ${this.name} is closed`);
    return this.log;
  }

  private remember(meta: StoredObject): void {
    this.cache.set(meta.key, meta);
    if (this.cache.size > this.cacheEntries) this.cache.delete(this.cache.keys().next().value as string);
  }

  /** The journal compaction in progress, if any. */
  get compaction(): Promise<void> | undefined {
    return this.compacting;
  }

  private maybeCompact(): void {
    if (this.compacting || this.deadRecords < Math.max(this.compactMinDead, this.index.size)) return;
    this.compacting = this.compact()
      .catch((err) => console.error(`[s3] bucket ${this.name}: compacting the metadata journal failed (it stays as it is): ${(err as Error).message}`))
      .finally(() => {
        this.compacting = undefined;
      });
  }

  /**
   * Rewrites the journal with only its live records while writes go on. The records before the
   * journal's current end that are live now are copied to a new file in file order; writes made
   * meanwhile go to the old file and are copied after them, in one short step in which writes wait.
   * Then the keys' offsets move to the new file in one synchronous step. A record copied live that a
   * write replaced meanwhile is simply dead in the new file, like any superseded record.
   */
  private async compact(): Promise<void> {
    await this.index.hold(); // no key run is written while offsets move
    try {
      // In a macrotask every append the journal has resolved has been applied, and those not yet
      // resolved lie past `settled`: so every live offset before `from` is gathered below.
      await new Promise((resolve) => setImmediate(resolve));
      const log = this.journal();
      const fd = this.readFd;
      const from = log.settled;
      const deadBefore = this.deadRecords;
      const sorted = this.index.offsetsBefore(from);
      const n = sorted.length;
      const moved = new Float64Array(n); // the new offset of sorted[i]
      function* live(): Iterable<Buffer> {
        let at = 0;
        for (let i = 0; i < n; i += 1) {
          const payload = readFrameSync(fd, sorted[i]!);
          moved[i] = at;
          at += frameLength(payload.length);
          yield payload;
        }
      }
      const tailStart = await log.compactBefore(from, live());
      this.index.relocate((offset) => (offset < from ? moved[indexOf(sorted, offset)]! : offset - from + tailStart));
      this.readFd = openSync(log.path, 'r');
      closeSync(fd);
      // Records superseded while it ran are in the new file (copied, or in the tail): still dead.
      this.deadRecords -= deadBefore;
    } finally {
      this.index.release();
    }
  }
}

/** The position of `value` in an ascending array that holds it. */
function indexOf(sorted: Float64Array, value: number): number {
  let lo = 0;
  let hi = sorted.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const v = sorted[mid]!;
    if (v === value) return mid;
    if (v < value) lo = mid + 1;
    else hi = mid - 1;
  }
  throw new Error(`offset ${value} is not among the compacted records`);
}

/** An object's current version, open for reading: a replace or delete meanwhile cannot pull its bytes away. */
export interface OpenedObject {
  meta: StoredObject;
  /** Bytes start..end (inclusive) as a stream; it leaves the object open. */
  stream(start: number, end: number): Readable;
  readAll(): Promise<Buffer>;
  close(): Promise<void>;
}

function inlineObject(meta: StoredObject, bytes: Buffer): OpenedObject {
  return {
    meta,
    stream: (start, end) => Readable.from(end >= start ? [bytes.subarray(start, end + 1)] : []),
    readAll: async () => bytes,
    close: async () => undefined,
  };
}

function fileObject(meta: StoredObject, handle: FileHandle): OpenedObject {
  return {
    meta,
    stream: (start, end) => (end >= start ? handle.createReadStream({ start, end, autoClose: false, highWaterMark: 1024 * 1024 }) : Readable.from([])),
    readAll: () => handle.readFile(),
    close: () => handle.close(),
  };
}

export class ObjectStorage {
  private readonly buckets = new Map<string, Bucket>();
  private readonly keyLocks = new Map<string, Promise<void>>();
  private lastSequencer = 0n;

  private constructor(
    readonly dataDir: string,
    private readonly onEvent: ((event: S3EventInput) => Promise<void>) | undefined,
    private readonly bucketOptions: BucketOptions,
  ) {}

  private get inlineMaxBytes(): number {
    return this.bucketOptions.inlineMaxBytes ?? INLINE_MAX_BYTES;
  }

  static async open(dataDir: string, onEvent?: (event: S3EventInput) => Promise<void>, options: BucketOptions = {}): Promise<ObjectStorage> {
    const storage = new ObjectStorage(dataDir, onEvent, options);
    await storage.load();
    return storage;
  }

  /** Waits for writes in progress, then closes the buckets' journals. */
  async close(): Promise<void> {
    await Promise.all([...this.keyLocks.values()]);
    for (const bucket of this.buckets.values()) await bucket.close();
  }

  // ---- buckets --------------------------------------------------------------------------------

  listBuckets(): Bucket[] {
    return [...this.buckets.values()].sort((a, b) => compareKeys(a.name, b.name));
  }

  bucket(name: string): Bucket {
    const b = this.buckets.get(name);
    if (!b) throw noSuchBucket(name);
    return b;
  }

  hasBucket(name: string): boolean {
    return this.buckets.has(name);
  }

  /** Creates a bucket; false when it already exists. */
  async createBucket(name: string, location = ''): Promise<boolean> {
    if (this.buckets.has(name)) return false;
    if (!validBucketName(name)) throw new S3Error(400, 'InvalidBucketName', `The specified bucket is not valid: ${name}`);
    const dir = join(this.dataDir, name);
    await mkdir(join(dir, 'objects'), { recursive: true });
    const createdAt = new Date().toISOString();
    await writeFile(join(dir, 'bucket.json'), JSON.stringify({ name, createdAt, location }));
    const { bucket } = await Bucket.open(name, dir, createdAt, location, this.bucketOptions);
    this.buckets.set(name, bucket);
    return true;
  }

  async deleteBucket(name: string): Promise<void> {
    const bucket = this.bucket(name);
    if (bucket.size > 0) throw new S3Error(409, 'BucketNotEmpty', 'The bucket you tried to delete is not empty');
    this.buckets.delete(name);
    await bucket.close();
    await rm(bucket.dir, { recursive: true, force: true });
  }

  // ---- objects --------------------------------------------------------------------------------

  head(bucketName: string, key: string): StoredObject | undefined {
    return this.bucket(bucketName).get(key);
  }

  /** A new data file's name and path in the bucket, for a body about to be written. */
  private newDataFile(bucketName: string, key: string): { dataFile: string; path: string } {
    const bucket = this.bucket(bucketName);
    const dataFile = `${hashKey(key)}-${randomUUID()}`;
    return { dataFile, path: join(bucket.dir, 'objects', dataFile) };
  }

  /** Where a new object's bytes go while they arrive (memory up to the inline limit, else a new data file); `commit` takes what it finishes with. */
  newBody(bucketName: string, key: string): BodySink {
    this.bucket(bucketName);
    return new BodySink(this.inlineMaxBytes, () => this.newDataFile(bucketName, key));
  }

  /**
   * Makes a new object's bytes (a finished BodySink's) its content if `condition` holds against the
   * current version, then emits `eventName`. A data file is removed when the write is refused.
   */
  async commit(
    bucketName: string,
    key: string,
    data: ObjectBytes & { size: number; etag: string; parts?: number[] },
    attributes: ObjectAttributes,
    condition: WriteCondition,
    eventName: ObjectEventName,
  ): Promise<StoredObject> {
    const bucket = this.bucket(bucketName);
    try {
      return await this.withKeyLock(bucketName, key, async () => {
        const current = bucket.get(key);
        checkWriteCondition(current, condition);
        const meta: StoredObject = {
          key,
          size: data.size,
          etag: data.etag,
          lastModified: new Date().toISOString(),
          ...('dataFile' in data ? { dataFile: data.dataFile } : {}),
          ...attributes,
          ...(data.parts ? { parts: data.parts } : {}),
        };
        if ('inline' in data && data.inline.length !== data.size)
          throw new Error(`commit of ${key}: ${data.inline.length} inline bytes for an object of ${data.size}`);
        await bucket.set(meta, 'inline' in data ? data.inline : undefined);
        if (current?.dataFile) await rm(join(bucket.dir, 'objects', current.dataFile), { force: true });
        await this.emit({ eventName, bucket: bucketName, key, size: meta.size, etag: meta.etag });
        return meta;
      });
    } catch (err) {
      if ('dataFile' in data) await rm(join(bucket.dir, 'objects', data.dataFile), { force: true });
      throw err;
    }
  }

  /** Writes a whole object from memory (the in-process adapter). */
  async putBuffer(bucketName: string, key: string, body: Buffer, attributes: ObjectAttributes, condition: WriteCondition = {}): Promise<StoredObject> {
    const { size, md5, bytes } = await writeAll(this.newBody(bucketName, key), [body]);
    return this.commit(bucketName, key, { ...bytes, size, etag: md5 }, attributes, condition, 'ObjectCreated:Put');
  }

  /** Deletes a key; false when it did not exist. 412 when the object exists and `condition` fails. */
  async remove(bucketName: string, key: string, condition: DeleteCondition = {}): Promise<boolean> {
    const bucket = this.bucket(bucketName);
    return this.withKeyLock(bucketName, key, async () => {
      const current = bucket.get(key);
      if (!current) return false;
      checkDeleteCondition(current, condition);
      await bucket.remove(key);
      if (current.dataFile) await rm(join(bucket.dir, 'objects', current.dataFile), { force: true });
      await this.emit({ eventName: 'ObjectRemoved:Delete', bucket: bucketName, key });
      return true;
    });
  }

  /**
   * The current version of an object, open for reading: its inline bytes, or its data file open, so
   * a concurrent replace or delete cannot pull the bytes away from a read that has started. The
   * caller closes it.
   */
  async openObject(bucketName: string, key: string): Promise<OpenedObject | undefined> {
    const bucket = this.bucket(bucketName);
    for (;;) {
      const found = bucket.read(key);
      if (!found) return undefined;
      const { meta, inline } = found;
      if (!meta.dataFile) return inlineObject(meta, inline!);
      try {
        return fileObject(meta, await open(join(bucket.dir, 'objects', meta.dataFile), 'r'));
      } catch (err) {
        // Replaced or deleted between the lookup and the open: look again.
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || bucket.get(key)?.dataFile === meta.dataFile) throw err;
      }
    }
  }

  async readAll(bucketName: string, key: string): Promise<Buffer | undefined> {
    const opened = await this.openObject(bucketName, key);
    if (!opened) return undefined;
    try {
      return await opened.readAll();
    } finally {
      await opened.close();
    }
  }

  list(bucketName: string, options: ListOptions): ListPage {
    const bucket = this.bucket(bucketName);
    return listPage(
      (start) => bucket.keysFrom(start),
      (k) => bucket.get(k),
      options,
    );
  }

  /** Every object under `prefix` after `startAfter`, in key order, lazily (keys written meanwhile may or may not appear). */
  *iterate(bucketName: string, prefix: string, startAfter: string): Iterable<StoredObject> {
    const bucket = this.bucket(bucketName);
    const after = startAfter !== '' && compareKeys(startAfter, prefix) >= 0;
    for (const key of bucket.keysFrom(after ? startAfter : prefix, after)) {
      if (!key.startsWith(prefix)) break;
      const meta = bucket.get(key);
      if (meta) yield meta;
    }
  }

  // ---- internals ------------------------------------------------------------------------------

  private async load(): Promise<void> {
    await mkdir(this.dataDir, { recursive: true });
    for (const entry of await readdir(this.dataDir, { withFileTypes: true })) {
      if (!entry.isDirectory() || !validBucketName(entry.name)) continue;
      const dir = join(this.dataDir, entry.name);
      let saved: { createdAt: string; location?: string };
      try {
        saved = JSON.parse(await readFile(join(dir, 'bucket.json'), 'utf8')) as typeof saved;
      } catch {
        continue;
      }
      const { bucket, dataFiles } = await Bucket.open(entry.name, dir, saved.createdAt, saved.location ?? '', this.bucketOptions);
      // Data files without metadata are leftovers of writes interrupted by a crash.
      for (const f of await readdir(join(dir, 'objects'))) if (!dataFiles.has(f)) await rm(join(dir, 'objects', f), { force: true });
      this.buckets.set(bucket.name, bucket);
    }
  }

  async withKeyLock<T>(bucket: string, key: string, fn: () => Promise<T>): Promise<T> {
    const lockKey = `${bucket}/${key}`;
    const previous = this.keyLocks.get(lockKey) ?? Promise.resolve();
    let release!: () => void;
    const current = new Promise<void>((r) => (release = r));
    const chained = previous.then(() => current);
    this.keyLocks.set(lockKey, chained);
    await previous;
    try {
      return await fn();
    } finally {
      release();
      if (this.keyLocks.get(lockKey) === chained) this.keyLocks.delete(lockKey);
    }
  }

  private nextSequencer(): string {
    const now = BigInt(Date.now()) * 1000n;
    this.lastSequencer = now > this.lastSequencer ? now : this.lastSequencer + 1n;
    return this.lastSequencer.toString(16).toUpperCase().padStart(18, '0');
  }

  private async emit(event: Omit<S3EventInput, 'sequencer'>): Promise<void> {
    if (this.onEvent) await this.onEvent({ ...event, sequencer: this.nextSequencer() });
  }
}

function etagMatches(condition: string, meta: StoredObject): boolean {
  return condition
    .split(',')
    .map((e) => e.trim())
    .some((e) => e === '*' || unquote(e) === meta.etag);
}

/** If-None-Match fails on an existing match (412); If-Match needs an existing match (404 when missing, 412 otherwise). */
export function checkWriteCondition(current: StoredObject | undefined, condition: WriteCondition): void {
  if (condition.ifNoneMatch !== undefined && current && etagMatches(condition.ifNoneMatch, current)) throw preconditionFailed();
  if (condition.ifMatch !== undefined) {
    if (!current) throw noSuchKey();
    if (!etagMatches(condition.ifMatch, current)) throw preconditionFailed();
  }
}

function checkDeleteCondition(current: StoredObject, condition: DeleteCondition): void {
  if (condition.ifMatch !== undefined && !etagMatches(condition.ifMatch, current)) throw preconditionFailed();
  if (condition.ifMatchSize !== undefined && condition.ifMatchSize !== current.size) throw preconditionFailed();
  if (
    condition.ifMatchLastModifiedTime !== undefined &&
    Math.floor(condition.ifMatchLastModifiedTime.getTime() / 1000) !== Math.floor(Date.parse(current.lastModified) / 1000)
  ) {
    throw preconditionFailed();
  }
}

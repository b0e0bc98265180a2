/**
 * The embedded S3 server's durable storage: buckets, objects and their metadata under a data
 * directory, per-key locks, conditional writes, ordered listing and object events.
 *
 * Each object is a data file plus a metadata file. A write lands its data in a new file first
 * (streamed and fsynced by the caller), then, under the key's lock, checks the request's
 * conditions, writes the metadata to a temporary name, fsyncs and renames it: a crash leaves either
 * the old or the new version, and data files no metadata refers to are removed at the next start.
 * The object event is handed to `onEvent` under the same lock, so events of one key are delivered
 * in write order, and a write is acknowledged only once its event is durably queued.
 */
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { S3EventInput } from '../../shared/s3-event';
import type { ChecksumAlgorithm } from './checksums';
import { S3Error, noSuchBucket, noSuchKey, preconditionFailed } from './errors';
import { compareKeys, lowerBound } from './key-order';
import { listPage, type ListOptions, type ListPage } from './listing';

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
  dataFile: string;
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

/**
 * A bucket's objects. Memory holds only the keys (for listing and existence) and a bounded cache of
 * recently used metadata; every object's metadata is its own file, read back on a miss. So memory
 * grows by a key per object, not by its metadata (measured: 480 heap bytes an object before).
 */
export class Bucket {
  private readonly keys = new Set<string>();
  private readonly cache = new Map<string, StoredObject>();
  private sorted: string[] | undefined;

  constructor(
    readonly name: string,
    readonly dir: string,
    readonly createdAt: string,
    /** The LocationConstraint the bucket was created with ('' for us-east-1). */
    readonly location = '',
    private readonly cacheEntries = METADATA_CACHE_ENTRIES,
  ) {}

  get size(): number {
    return this.keys.size;
  }

  metaPath(key: string): string {
    return join(this.dir, 'meta', `${hashKey(key)}.json`);
  }

  /** The current metadata of `key`: from the cache, else from its file (synchronously: a small local read). */
  get(key: string): StoredObject | undefined {
    if (!this.keys.has(key)) return undefined;
    const cached = this.cache.get(key);
    if (cached) {
      this.cache.delete(key); // most recently used last
      this.cache.set(key, cached);
      return cached;
    }
    let meta: StoredObject;
    try {
      meta = JSON.parse(readFileSync(this.metaPath(key), 'utf8')) as StoredObject;
    } catch (err) {
      // Removed between the key check and the read (a delete in progress): gone.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    this.remember(meta);
    return meta;
  }

  *values(): Iterable<StoredObject> {
    for (const key of this.sortedKeys()) {
      const meta = this.get(key);
      if (meta) yield meta;
    }
  }

  /** Keys in S3 order; replaced, never mutated, when keys change, so it is safe to iterate lazily. */
  sortedKeys(): string[] {
    this.sorted ??= [...this.keys].sort(compareKeys);
    return this.sorted;
  }

  set(meta: StoredObject): void {
    if (!this.keys.has(meta.key)) {
      this.keys.add(meta.key);
      this.sorted = undefined;
    }
    this.cache.delete(meta.key);
    this.remember(meta);
  }

  /** A key found on disk at start: listed, its metadata read when first used. */
  addLoaded(key: string): void {
    this.keys.add(key);
    this.sorted = undefined;
  }

  remove(key: string): void {
    this.cache.delete(key);
    if (this.keys.delete(key)) this.sorted = undefined;
  }

  private remember(meta: StoredObject): void {
    this.cache.set(meta.key, meta);
    if (this.cache.size > this.cacheEntries) this.cache.delete(this.cache.keys().next().value as string);
  }
}

export class ObjectStorage {
  private readonly buckets = new Map<string, Bucket>();
  private readonly keyLocks = new Map<string, Promise<void>>();
  private lastSequencer = 0n;

  private constructor(
    readonly dataDir: string,
    private readonly onEvent: ((event: S3EventInput) => Promise<void>) | undefined,
    private readonly metadataCacheEntries: number,
  ) {}

  static async open(
    dataDir: string,
    onEvent?: (event: S3EventInput) => Promise<void>,
    options: { metadataCacheEntries?: number } = {},
  ): Promise<ObjectStorage> {
    const storage = new ObjectStorage(dataDir, onEvent, options.metadataCacheEntries ?? METADATA_CACHE_ENTRIES);
    await storage.load();
    return storage;
  }

  /** Waits for writes in progress. */
  async close(): Promise<void> {
    await Promise.all([...this.keyLocks.values()]);
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
    await mkdir(join(dir, 'meta'), { recursive: true });
    const createdAt = new Date().toISOString();
    await writeFile(join(dir, 'bucket.json'), JSON.stringify({ name, createdAt, location }));
    this.buckets.set(name, new Bucket(name, dir, createdAt, location, this.metadataCacheEntries));
    return true;
  }

  async deleteBucket(name: string): Promise<void> {
    const bucket = this.bucket(name);
    if (bucket.size > 0) throw new S3Error(409, 'BucketNotEmpty', 'The bucket you tried to delete is not empty');
    this.buckets.delete(name);
    await rm(bucket.dir, { recursive: true, force: true });
  }

  // ---- objects --------------------------------------------------------------------------------

  head(bucketName: string, key: string): StoredObject | undefined {
    return this.bucket(bucketName).get(key);
  }

  /** A new data file's name and path in the bucket, for a body about to be written. */
  newDataFile(bucketName: string, key: string): { dataFile: string; path: string } {
    const bucket = this.bucket(bucketName);
    const dataFile = `${hashKey(key)}-${randomUUID()}`;
    return { dataFile, path: join(bucket.dir, 'objects', dataFile) };
  }

  /**
   * Makes a written, fsynced data file the object's content if `condition` holds against the
   * current version, then emits `eventName`. The data file is removed when the write is refused.
   */
  async commit(
    bucketName: string,
    key: string,
    data: { dataFile: string; size: number; etag: string; parts?: number[] },
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
          dataFile: data.dataFile,
          ...attributes,
          ...(data.parts ? { parts: data.parts } : {}),
        };
        const metaPath = bucket.metaPath(key);
        await writeDurably(`${metaPath}.tmp`, Buffer.from(JSON.stringify(meta)));
        await rename(`${metaPath}.tmp`, metaPath);
        bucket.set(meta);
        if (current) await rm(join(bucket.dir, 'objects', current.dataFile), { force: true });
        await this.emit({ eventName, bucket: bucketName, key, size: meta.size, etag: meta.etag });
        return meta;
      });
    } catch (err) {
      await rm(join(bucket.dir, 'objects', data.dataFile), { force: true });
      throw err;
    }
  }

  /** Writes a whole object from memory (the in-process adapter). */
  async putBuffer(bucketName: string, key: string, body: Buffer, attributes: ObjectAttributes, condition: WriteCondition = {}): Promise<StoredObject> {
    const { dataFile, path } = this.newDataFile(bucketName, key);
    await writeDurably(path, body);
    const etag = createHash('md5').update(body).digest('hex');
    return this.commit(bucketName, key, { dataFile, size: body.length, etag }, attributes, condition, 'ObjectCreated:Put');
  }

  /** Deletes a key; false when it did not exist. 412 when the object exists and `condition` fails. */
  async remove(bucketName: string, key: string, condition: DeleteCondition = {}): Promise<boolean> {
    const bucket = this.bucket(bucketName);
    return this.withKeyLock(bucketName, key, async () => {
      const current = bucket.get(key);
      if (!current) return false;
      checkDeleteCondition(current, condition);
      await unlink(bucket.metaPath(key));
      bucket.remove(key);
      await rm(join(bucket.dir, 'objects', current.dataFile), { force: true });
      await this.emit({ eventName: 'ObjectRemoved:Delete', bucket: bucketName, key });
      return true;
    });
  }

  /**
   * The current version of an object with its data file open: a concurrent replace or delete
   * cannot pull the bytes away from a read that has started. The caller closes the handle.
   */
  async openObject(bucketName: string, key: string): Promise<{ meta: StoredObject; handle: FileHandle } | undefined> {
    const bucket = this.bucket(bucketName);
    for (;;) {
      const meta = bucket.get(key);
      if (!meta) return undefined;
      try {
        return { meta, handle: await open(join(bucket.dir, 'objects', meta.dataFile), 'r') };
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
      return await opened.handle.readFile();
    } finally {
      await opened.handle.close();
    }
  }

  list(bucketName: string, options: ListOptions): ListPage {
    const bucket = this.bucket(bucketName);
    return listPage(bucket.sortedKeys(), (k) => bucket.get(k), options);
  }

  /** Every object under `prefix` after `startAfter`, in key order, as of the call. */
  *iterate(bucketName: string, prefix: string, startAfter: string): Iterable<StoredObject> {
    const bucket = this.bucket(bucketName);
    const keys = bucket.sortedKeys();
    const from = startAfter && compareKeys(startAfter, prefix) > 0 ? startAfter : prefix;
    for (let i = lowerBound(keys, from); i < keys.length; i += 1) {
      const key = keys[i]!;
      if (!key.startsWith(prefix)) break;
      if (startAfter && compareKeys(key, startAfter) <= 0) continue;
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
      const bucket = new Bucket(entry.name, dir, saved.createdAt, saved.location ?? '', this.metadataCacheEntries);
      const referenced = new Set<string>();
      for (const f of await readdir(join(dir, 'meta'))) {
        if (!f.endsWith('.json')) {
          await rm(join(dir, 'meta', f), { force: true });
          continue;
        }
        const meta = JSON.parse(await readFile(join(dir, 'meta', f), 'utf8')) as StoredObject;
        bucket.addLoaded(meta.key);
        referenced.add(meta.dataFile);
      }
      // Data files without metadata are leftovers of writes interrupted by a crash.
      for (const f of await readdir(join(dir, 'objects'))) if (!referenced.has(f)) await rm(join(dir, 'objects', f), { force: true });
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

/** Writes `chunks` to a new file at `path` and fsyncs it; the hex MD5 and size of what was written. Removes the file on failure. */
export async function writeStreamDurably(path: string, chunks: AsyncIterable<Buffer>): Promise<{ size: number; md5: string }> {
  const md5 = createHash('md5');
  const out = await open(path, 'w');
  let size = 0;
  try {
    for await (const chunk of chunks) {
      md5.update(chunk);
      size += chunk.length;
      await out.write(chunk);
    }
    await out.datasync();
  } catch (err) {
    await rm(path, { force: true });
    throw err;
  } finally {
    await out.close();
  }
  return { size, md5: md5.digest('hex') };
}

export async function writeDurably(path: string, body: Buffer): Promise<void> {
  const fh = await open(path, 'w');
  try {
    await fh.writeFile(body);
    await fh.datasync();
  } finally {
    await fh.close();
  }
}

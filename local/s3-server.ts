/**
 * An S3-compatible server for the embedded stack, persisting under a data directory.
 *
 * Enough of the S3 REST API for the AWS CLI and the AWS SDKs: buckets (list, create, head),
 * objects (put, get with ranges, head, delete, batch delete, copy, ListObjects v1/v2 with prefix,
 * delimiter and pagination) and multipart uploads. Path-style and `<bucket>.localhost` addressing.
 * Request signatures are not checked: any credentials work.
 *
 * Each object is a data file plus a metadata file, written to temporary names, fsynced and
 * renamed, so a crash leaves either the old or the new version. Object events (created/removed)
 * are handed to `onEvent`, and the client's request is answered only after it resolves: an
 * acknowledged upload always has its event durably queued.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import type { ObjectInfo, ObjectStore } from '../shared/ports/object-store';
import type { S3EventInput } from '../shared/s3-event';

export interface S3ServerOptions {
  dataDir: string;
  host: string;
  port: number;
  buckets: string[];
  onEvent?: (event: S3EventInput) => Promise<void>;
  /** Largest single PUT or part held in memory. */
  maxRequestBytes?: number;
  /**
   * Fault injection for tests: return a status and S3 error code to fail the request with, or
   * 'reset' to drop the connection, or 'hang' to never answer.
   */
  faults?: (req: IncomingMessage) => { status: number; code: string } | 'reset' | 'hang' | undefined;
}

interface ObjectMeta {
  key: string;
  size: number;
  etag: string;
  contentType: string;
  lastModified: string;
  dataFile: string;
  userMetadata: Record<string, string>;
}

class S3Failure extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const hashKey = (key: string) => createHash('sha256').update(key, 'utf8').digest('hex');
const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

class Bucket {
  readonly objects = new Map<string, ObjectMeta>();
  private sorted: string[] | undefined;
  readonly createdAt: string;

  constructor(
    readonly name: string,
    readonly dir: string,
    createdAt: string,
  ) {
    this.createdAt = createdAt;
  }

  sortedKeys(): string[] {
    this.sorted ??= [...this.objects.keys()].sort(compareKeys);
    return this.sorted;
  }

  set(meta: ObjectMeta): void {
    if (!this.objects.has(meta.key)) this.sorted = undefined;
    this.objects.set(meta.key, meta);
  }

  remove(key: string): void {
    if (this.objects.delete(key)) this.sorted = undefined;
  }
}

function infoOf(meta: ObjectMeta): ObjectInfo {
  return { key: meta.key, size: meta.size, etag: meta.etag, lastModified: new Date(meta.lastModified), contentType: meta.contentType };
}

class InProcessObjectStore implements ObjectStore {
  constructor(private readonly server: LocalS3Server) {}

  head(bucket: string, key: string) {
    return this.server.directHead(bucket, key);
  }

  get(bucket: string, key: string) {
    return this.server.directGet(bucket, key);
  }

  async put(bucket: string, key: string, body: Buffer | string, contentType = 'application/octet-stream') {
    await this.server.directPut(bucket, key, Buffer.from(body), contentType);
  }

  putIf(bucket: string, key: string, body: Buffer | string, condition: { ifAbsent: true } | { ifMatch: string }, contentType = 'application/octet-stream') {
    return this.server.directPut(bucket, key, Buffer.from(body), contentType, 'ifAbsent' in condition ? { ifNoneMatch: '*' } : { ifMatch: condition.ifMatch });
  }

  delete(bucket: string, key: string) {
    return this.server.directDelete(bucket, key);
  }

  async deleteMany(bucket: string, keys: string[]) {
    for (const key of keys) await this.server.directDelete(bucket, key);
  }

  async *list(bucket: string, prefix = '', startAfter = '') {
    // Iterates the sorted keys as they were when it started, like a paginated listing.
    yield* this.server.directList(bucket, prefix, startAfter);
  }
}

/** S3 orders keys by their UTF-8 bytes. */
function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

export class LocalS3Server {
  private readonly buckets = new Map<string, Bucket>();
  private readonly keyLocks = new Map<string, Promise<void>>();
  private server!: Server;
  private lastSequencer = 0n;
  private readonly maxRequestBytes: number;

  private constructor(private readonly options: S3ServerOptions) {
    this.maxRequestBytes = options.maxRequestBytes ?? 512 * 1024 * 1024;
  }

  static async start(options: S3ServerOptions): Promise<LocalS3Server> {
    const s = new LocalS3Server(options);
    await s.load();
    for (const name of options.buckets) await s.createBucket(name);
    s.server = createServer((req, res) => void s.handle(req, res));
    s.server.keepAliveTimeout = 65_000;
    await new Promise<void>((resolve, reject) => {
      s.server.once('error', reject);
      s.server.listen(options.port, options.host, () => resolve());
    });
    return s;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get endpoint(): string {
    return `http://${this.options.host}:${this.port}`;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    await Promise.all([...this.keyLocks.values()]);
  }

  /**
   * The same storage as an in-process ObjectStore, for the stack's own workers: the same objects,
   * key locks, conditional writes, durability and events as over HTTP, without a loopback round
   * trip, SigV4 signing, checksums and XML per call. Users, the CLI and the trainer keep using the
   * S3 wire protocol.
   */
  objectStore(): ObjectStore {
    return new InProcessObjectStore(this);
  }

  /** @internal for InProcessObjectStore */
  async directHead(bucketName: string, key: string): Promise<ObjectInfo | undefined> {
    const meta = this.bucket(bucketName).objects.get(key);
    return meta ? infoOf(meta) : undefined;
  }

  /** @internal */
  async directGet(bucketName: string, key: string): Promise<Buffer | undefined> {
    const bucket = this.bucket(bucketName);
    const meta = bucket.objects.get(key);
    if (!meta) return undefined;
    try {
      return await this.readObject(bucket, meta);
    } catch (err) {
      // Replaced or deleted between the lookup and the read: read the current state again.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      const now = bucket.objects.get(key);
      return now ? this.readObject(bucket, now) : undefined;
    }
  }

  /** @internal */
  async directPut(bucketName: string, key: string, body: Buffer, contentType: string, condition?: { ifNoneMatch?: string; ifMatch?: string }): Promise<boolean> {
    const bucket = this.bucket(bucketName);
    let meta: ObjectMeta;
    try {
      meta = await this.writeObject(bucket, key, body, contentType, {}, undefined, condition);
    } catch (err) {
      if (err instanceof S3Failure && (err.status === 412 || err.status === 404) && condition) return false;
      throw err;
    }
    await this.emit({ eventName: 'ObjectCreated:Put', bucket: bucket.name, key, size: meta.size, etag: meta.etag });
    return true;
  }

  /** @internal */
  async directDelete(bucketName: string, key: string): Promise<void> {
    const bucket = this.bucket(bucketName);
    if (await this.deleteObject(bucket, key)) await this.emit({ eventName: 'ObjectRemoved:Delete', bucket: bucket.name, key });
  }

  /** @internal */
  *directList(bucketName: string, prefix: string, startAfter: string): Iterable<ObjectInfo> {
    const bucket = this.bucket(bucketName);
    const keys = bucket.sortedKeys(); // replaced, never mutated, when keys change: safe to iterate lazily
    const from = startAfter && compareKeys(startAfter, prefix) > 0 ? startAfter : prefix;
    let lo = 0;
    let hi = keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareKeys(keys[mid]!, from) < 0) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < keys.length; i += 1) {
      const k = keys[i]!;
      if (!k.startsWith(prefix)) break;
      if (startAfter && compareKeys(k, startAfter) <= 0) continue;
      const meta = bucket.objects.get(k);
      if (meta) yield infoOf(meta);
    }
  }

  // ---- storage -------------------------------------------------------------------------------

  private async load(): Promise<void> {
    await mkdir(this.options.dataDir, { recursive: true });
    for (const entry of await readdir(this.options.dataDir, { withFileTypes: true })) {
      if (!entry.isDirectory() || !BUCKET_NAME.test(entry.name)) continue;
      const dir = join(this.options.dataDir, entry.name);
      let createdAt = new Date().toISOString();
      try {
        createdAt = JSON.parse(await readFile(join(dir, 'bucket.json'), 'utf8')).createdAt;
      } catch {
        continue;
      }
      const bucket = new Bucket(entry.name, dir, createdAt);
      const referenced = new Set<string>();
      for (const f of await readdir(join(dir, 'meta'))) {
        if (!f.endsWith('.json')) {
          await rm(join(dir, 'meta', f), { force: true });
          continue;
        }
        const meta = JSON.parse(await readFile(join(dir, 'meta', f), 'utf8')) as ObjectMeta;
        bucket.set(meta);
        referenced.add(meta.dataFile);
      }
      // Data files without metadata are leftovers of writes interrupted by a crash.
      for (const f of await readdir(join(dir, 'objects'))) if (!referenced.has(f)) await rm(join(dir, 'objects', f), { force: true });
      this.buckets.set(bucket.name, bucket);
    }
  }

  private async createBucket(name: string): Promise<Bucket> {
    const existing = this.buckets.get(name);
    if (existing) return existing;
    if (!BUCKET_NAME.test(name)) throw new S3Failure(400, 'InvalidBucketName', `invalid bucket name ${name}`);
    const dir = join(this.options.dataDir, name);
    await mkdir(join(dir, 'objects'), { recursive: true });
    await mkdir(join(dir, 'meta'), { recursive: true });
    const createdAt = new Date().toISOString();
    await writeFile(join(dir, 'bucket.json'), JSON.stringify({ name, createdAt }));
    const bucket = new Bucket(name, dir, createdAt);
    this.buckets.set(name, bucket);
    return bucket;
  }

  private bucket(name: string): Bucket {
    const b = this.buckets.get(name);
    if (!b) throw new S3Failure(404, 'NoSuchBucket', `The specified bucket does not exist: ${name}`);
    return b;
  }

  private async withKeyLock<T>(bucket: string, key: string, fn: () => Promise<T>): Promise<T> {
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

  private async writeObject(
    bucket: Bucket,
    key: string,
    body: Buffer,
    contentType: string,
    userMetadata: Record<string, string>,
    etag?: string,
    condition?: { ifNoneMatch?: string; ifMatch?: string },
  ): Promise<ObjectMeta> {
    return this.withKeyLock(bucket.name, key, async () => {
      const current = bucket.objects.get(key);
      if (condition?.ifNoneMatch === '*' && current) throw new S3Failure(412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold');
      if (condition?.ifMatch !== undefined && (!current || condition.ifMatch.replace(/"/g, '') !== current.etag)) {
        throw new S3Failure(current ? 412 : 404, current ? 'PreconditionFailed' : 'NoSuchKey', 'At least one of the pre-conditions you specified did not hold');
      }
      const h = hashKey(key);
      const dataFile = `${h}-${randomUUID()}`;
      await writeDurably(join(bucket.dir, 'objects', dataFile), body);
      const meta: ObjectMeta = {
        key,
        size: body.length,
        etag: etag ?? md5(body),
        contentType,
        lastModified: new Date().toISOString(),
        dataFile,
        userMetadata,
      };
      await writeDurably(join(bucket.dir, 'meta', `${h}.json.tmp`), Buffer.from(JSON.stringify(meta)));
      await rename(join(bucket.dir, 'meta', `${h}.json.tmp`), join(bucket.dir, 'meta', `${h}.json`));
      const previous = bucket.objects.get(key);
      bucket.set(meta);
      if (previous) await rm(join(bucket.dir, 'objects', previous.dataFile), { force: true });
      return meta;
    });
  }

  private async deleteObject(bucket: Bucket, key: string): Promise<boolean> {
    return this.withKeyLock(bucket.name, key, async () => {
      const previous = bucket.objects.get(key);
      if (!previous) return false;
      await unlink(join(bucket.dir, 'meta', `${hashKey(key)}.json`));
      bucket.remove(key);
      await rm(join(bucket.dir, 'objects', previous.dataFile), { force: true });
      return true;
    });
  }

  private async readObject(bucket: Bucket, meta: ObjectMeta): Promise<Buffer> {
    return readFile(join(bucket.dir, 'objects', meta.dataFile));
  }

  private nextSequencer(): string {
    const now = BigInt(Date.now()) * 1000n;
    this.lastSequencer = now > this.lastSequencer ? now : this.lastSequencer + 1n;
    return this.lastSequencer.toString(16).toUpperCase().padStart(18, '0');
  }

  private async emit(event: Omit<S3EventInput, 'sequencer'>): Promise<void> {
    if (this.options.onEvent) await this.options.onEvent({ ...event, sequencer: this.nextSequencer() });
  }

  // ---- HTTP ----------------------------------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestId = randomUUID().replace(/-/g, '').slice(0, 16).toUpperCase();
    res.setHeader('x-amz-request-id', requestId);
    res.setHeader('server', 'pipeline-local-s3');
    try {
      const fault = this.options.faults?.(req);
      if (fault === 'reset') return void req.socket.destroy();
      if (fault === 'hang') return;
      if (fault) throw new S3Failure(fault.status, fault.code, 'injected fault');
      await this.route(req, res);
    } catch (err) {
      const failure = err instanceof S3Failure ? err : new S3Failure(500, 'InternalError', (err as Error).message);
      if (failure.status === 500) console.error(`[s3] ${req.method} ${req.url}: ${(err as Error).stack ?? err}`);
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (req.method === 'HEAD') {
        res.writeHead(failure.status).end();
        return;
      }
      sendXml(res, failure.status, `<Error><Code>${failure.code}</Code><Message>${xmlEscape(failure.message)}</Message><RequestId>${requestId}</RequestId></Error>`);
    }
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = req.method ?? 'GET';
    // The raw path, not url.pathname: URL parsing resolves '.' and '..' segments, and in S3 they are
    // ordinary characters of a key. Keys never become file paths here (objects are stored by hash).
    let pathname = (req.url ?? '/').split('?')[0]!;
    if (!pathname.startsWith('/')) pathname = `/${pathname}`;
    const hostBucket = this.virtualHostBucket(req.headers.host);
    if (hostBucket) pathname = `/${hostBucket}${pathname}`;
    const slash = pathname.indexOf('/', 1);
    const bucketName = decodeURIComponent(slash === -1 ? pathname.slice(1) : pathname.slice(1, slash));
    const key = slash === -1 ? '' : decodeURIComponent(pathname.slice(slash + 1));
    const q = url.searchParams;

    if (!bucketName) {
      if (method !== 'GET') throw new S3Failure(405, 'MethodNotAllowed', 'The specified method is not allowed against this resource.');
      await drain(req);
      return this.listBuckets(res);
    }
    if (!key) {
      switch (method) {
        case 'PUT':
          await drain(req);
          await this.createBucket(bucketName);
          res.writeHead(200, { location: `/${bucketName}` }).end();
          return;
        case 'HEAD':
          await drain(req);
          this.bucket(bucketName);
          res.writeHead(200, { 'x-amz-bucket-region': 'us-east-1' }).end();
          return;
        case 'GET':
          await drain(req);
          if (q.has('location')) return sendXml(res, 200, '<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/"></LocationConstraint>');
          return this.listObjects(this.bucket(bucketName), q, res);
        case 'POST':
          if (q.has('delete')) return this.deleteObjects(this.bucket(bucketName), await readBody(req, this.maxRequestBytes), res);
          break;
        default:
          break;
      }
      throw new S3Failure(405, 'MethodNotAllowed', `${method} is not supported on a bucket`);
    }

    const bucket = this.bucket(bucketName);
    if (Buffer.byteLength(key, 'utf8') > 1024) throw new S3Failure(400, 'KeyTooLongError', 'Your key is too long');
    switch (method) {
      case 'PUT':
        if (q.has('uploadId')) return this.uploadPart(bucket, key, q, req, res);
        if (req.headers['x-amz-copy-source']) return this.copyObject(bucket, key, req, res);
        return this.putObject(bucket, key, req, res);
      case 'GET':
      case 'HEAD':
        await drain(req);
        return this.getObject(bucket, key, req, res, method === 'HEAD');
      case 'DELETE':
        await drain(req);
        if (q.has('uploadId')) return this.abortUpload(q.get('uploadId')!, res);
        if (await this.deleteObject(bucket, key)) await this.emit({ eventName: 'ObjectRemoved:Delete', bucket: bucket.name, key });
        res.writeHead(204).end();
        return;
      case 'POST':
        if (q.has('uploads')) {
          await drain(req);
          return this.createUpload(bucket, key, req, res);
        }
        if (q.has('uploadId')) return this.completeUpload(bucket, key, q.get('uploadId')!, await readBody(req, this.maxRequestBytes), res);
        break;
      default:
        break;
    }
    throw new S3Failure(405, 'MethodNotAllowed', `${method} is not supported on an object`);
  }

  private virtualHostBucket(host: string | undefined): string | undefined {
    if (!host) return undefined;
    const name = host.replace(/:\d+$/, '');
    const dot = name.indexOf('.');
    if (dot <= 0) return undefined;
    const candidate = name.slice(0, dot);
    return this.buckets.has(candidate) && /^localhost$|^127\.0\.0\.1$/.test(name.slice(dot + 1)) ? candidate : undefined;
  }

  private listBuckets(res: ServerResponse): void {
    const items = [...this.buckets.values()]
      .map((b) => `<Bucket><Name>${b.name}</Name><CreationDate>${b.createdAt}</CreationDate></Bucket>`)
      .join('');
    sendXml(res, 200, `<ListAllMyBucketsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Owner><ID>local</ID><DisplayName>local</DisplayName></Owner><Buckets>${items}</Buckets></ListAllMyBucketsResult>`);
  }

  private listObjects(bucket: Bucket, q: URLSearchParams, res: ServerResponse): void {
    const v2 = q.get('list-type') === '2';
    const prefix = q.get('prefix') ?? '';
    const delimiter = q.get('delimiter') ?? '';
    const maxKeys = Math.max(0, Math.min(1000, Number(q.get('max-keys') ?? 1000) || 0));
    const encode = q.get('encoding-type') === 'url';
    const token = q.get('continuation-token');
    const after = v2 ? (token ? Buffer.from(token, 'base64').toString('utf8') : (q.get('start-after') ?? '')) : (q.get('marker') ?? '');
    const keys = bucket.sortedKeys();
    let lo = 0;
    let hi = keys.length;
    const start = after > prefix ? after : prefix;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (compareKeys(keys[mid]!, start) < 0) lo = mid + 1;
      else hi = mid;
    }
    const contents: ObjectMeta[] = [];
    const prefixes: string[] = [];
    let truncated = false;
    let lastReturned = '';
    for (let i = lo; i < keys.length; i += 1) {
      const k = keys[i]!;
      if (after && compareKeys(k, after) <= 0) continue;
      if (!k.startsWith(prefix)) break;
      let entry: string | ObjectMeta = bucket.objects.get(k)!;
      if (delimiter) {
        const cut = k.indexOf(delimiter, prefix.length);
        if (cut !== -1) {
          const p = k.slice(0, cut + delimiter.length);
          if (prefixes[prefixes.length - 1] === p) continue;
          entry = p;
        }
      }
      if (contents.length + prefixes.length >= maxKeys) {
        truncated = true;
        break;
      }
      if (typeof entry === 'string') {
        prefixes.push(entry);
        lastReturned = entry;
        // Skip the rest of this common prefix.
        while (i + 1 < keys.length && keys[i + 1]!.startsWith(entry)) i += 1;
      } else {
        contents.push(entry);
        lastReturned = entry.key;
      }
    }
    const enc = (s: string) => xmlEscape(encode ? encodeURIComponent(s).replace(/%2F/g, '/') : s);
    const body = [
      `<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>${bucket.name}</Name><Prefix>${enc(prefix)}</Prefix>`,
      `<MaxKeys>${maxKeys}</MaxKeys>${delimiter ? `<Delimiter>${enc(delimiter)}</Delimiter>` : ''}<IsTruncated>${truncated}</IsTruncated>`,
      encode ? '<EncodingType>url</EncodingType>' : '',
      v2 ? `<KeyCount>${contents.length + prefixes.length}</KeyCount>` : `<Marker>${enc(after)}</Marker>`,
      v2 && token ? `<ContinuationToken>${xmlEscape(token)}</ContinuationToken>` : '',
      truncated && v2 ? `<NextContinuationToken>${Buffer.from(lastReturned, 'utf8').toString('base64')}</NextContinuationToken>` : '',
      truncated && !v2 ? `<NextMarker>${enc(lastReturned)}</NextMarker>` : '',
      ...contents.map(
        (m) =>
          `<Contents><Key>${enc(m.key)}</Key><LastModified>${m.lastModified}</LastModified><ETag>&quot;${m.etag}&quot;</ETag><Size>${m.size}</Size><StorageClass>STANDARD</StorageClass></Contents>`,
      ),
      ...prefixes.map((p) => `<CommonPrefixes><Prefix>${enc(p)}</Prefix></CommonPrefixes>`),
      '</ListBucketResult>',
    ].join('');
    sendXml(res, 200, body);
  }

  private async putObject(bucket: Bucket, key: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readPayload(req, this.maxRequestBytes);
    const condition = { ifNoneMatch: header(req, 'if-none-match'), ifMatch: header(req, 'if-match') };
    const meta = await this.writeObject(bucket, key, body, contentTypeOf(req), userMetadataOf(req), undefined, condition);
    await this.emit({ eventName: 'ObjectCreated:Put', bucket: bucket.name, key, size: meta.size, etag: meta.etag });
    res.writeHead(200, { etag: `"${meta.etag}"` }).end();
  }

  private async copyObject(bucket: Bucket, key: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    await drain(req);
    const source = decodeURIComponent(String(req.headers['x-amz-copy-source']).split('?')[0]!.replace(/^\//, ''));
    const slash = source.indexOf('/');
    const srcBucket = this.bucket(source.slice(0, slash));
    const srcMeta = srcBucket.objects.get(source.slice(slash + 1));
    if (!srcMeta) throw new S3Failure(404, 'NoSuchKey', 'The specified key does not exist.');
    const body = await this.readObject(srcBucket, srcMeta);
    const replace = req.headers['x-amz-metadata-directive'] === 'REPLACE';
    const meta = await this.writeObject(
      bucket,
      key,
      body,
      replace ? contentTypeOf(req) : srcMeta.contentType,
      replace ? userMetadataOf(req) : srcMeta.userMetadata,
    );
    await this.emit({ eventName: 'ObjectCreated:Copy', bucket: bucket.name, key, size: meta.size, etag: meta.etag });
    sendXml(res, 200, `<CopyObjectResult><LastModified>${meta.lastModified}</LastModified><ETag>&quot;${meta.etag}&quot;</ETag></CopyObjectResult>`);
  }

  private async getObject(bucket: Bucket, key: string, req: IncomingMessage, res: ServerResponse, headOnly: boolean): Promise<void> {
    const meta = bucket.objects.get(key);
    if (!meta) throw new S3Failure(404, 'NoSuchKey', 'The specified key does not exist.');
    const headers: Record<string, string | number> = {
      'content-type': meta.contentType,
      etag: `"${meta.etag}"`,
      'last-modified': new Date(meta.lastModified).toUTCString(),
      'accept-ranges': 'bytes',
    };
    for (const [k, v] of Object.entries(meta.userMetadata)) headers[`x-amz-meta-${k}`] = v;
    let start = 0;
    let end = meta.size - 1;
    const range = req.headers.range;
    let status = 200;
    if (range && meta.size > 0) {
      const m = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
      if (!m || (m[1] === '' && m[2] === '')) throw new S3Failure(416, 'InvalidRange', 'The requested range is not satisfiable');
      if (m[1] === '') {
        start = Math.max(0, meta.size - Number(m[2]));
      } else {
        start = Number(m[1]);
        if (m[2] !== '') end = Math.min(end, Number(m[2]));
      }
      if (start > end || start >= meta.size) throw new S3Failure(416, 'InvalidRange', 'The requested range is not satisfiable');
      status = 206;
      headers['content-range'] = `bytes ${start}-${end}/${meta.size}`;
    }
    headers['content-length'] = meta.size === 0 ? 0 : end - start + 1;
    res.writeHead(status, headers);
    if (headOnly || meta.size === 0) {
      res.end();
      return;
    }
    const stream = createReadStream(join(bucket.dir, 'objects', meta.dataFile), { start, end });
    await new Promise<void>((resolve, reject) => {
      stream.on('error', reject);
      res.on('close', resolve);
      stream.pipe(res);
    });
  }

  private async deleteObjects(bucket: Bucket, body: Buffer, res: ServerResponse): Promise<void> {
    const xml = body.toString('utf8');
    const keys = [...xml.matchAll(/<Object>\s*<Key>([\s\S]*?)<\/Key>/g)].map((m) => xmlUnescape(m[1]!));
    if (keys.length > 1000) throw new S3Failure(400, 'MalformedXML', 'at most 1000 keys per request');
    const quiet = /<Quiet>\s*true\s*<\/Quiet>/i.test(xml);
    const deleted: string[] = [];
    for (const key of keys) {
      if (await this.deleteObject(bucket, key)) await this.emit({ eventName: 'ObjectRemoved:Delete', bucket: bucket.name, key });
      deleted.push(key);
    }
    const items = quiet ? '' : deleted.map((k) => `<Deleted><Key>${xmlEscape(k)}</Key></Deleted>`).join('');
    sendXml(res, 200, `<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${items}</DeleteResult>`);
  }

  // ---- multipart -----------------------------------------------------------------------------

  private uploadDir(uploadId: string): string {
    if (!/^[0-9a-f-]{36}$/.test(uploadId)) throw new S3Failure(404, 'NoSuchUpload', 'The specified upload does not exist.');
    return join(this.options.dataDir, '.uploads', uploadId);
  }

  private async createUpload(bucket: Bucket, key: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const uploadId = randomUUID();
    const dir = this.uploadDir(uploadId);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'upload.json'), JSON.stringify({ bucket: bucket.name, key, contentType: contentTypeOf(req), userMetadata: userMetadataOf(req) }));
    sendXml(res, 200, `<InitiateMultipartUploadResult><Bucket>${bucket.name}</Bucket><Key>${xmlEscape(key)}</Key><UploadId>${uploadId}</UploadId></InitiateMultipartUploadResult>`);
  }

  private async uploadPart(_bucket: Bucket, _key: string, q: URLSearchParams, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const dir = this.uploadDir(q.get('uploadId')!);
    const part = Number(q.get('partNumber'));
    if (!Number.isInteger(part) || part < 1 || part > 10000) throw new S3Failure(400, 'InvalidArgument', 'Part number must be an integer between 1 and 10000');
    try {
      await stat(join(dir, 'upload.json'));
    } catch {
      throw new S3Failure(404, 'NoSuchUpload', 'The specified upload does not exist.');
    }
    const body = await readPayload(req, this.maxRequestBytes);
    await writeDurably(join(dir, `part-${part}`), body);
    res.writeHead(200, { etag: `"${md5(body)}"` }).end();
  }

  private async completeUpload(bucket: Bucket, key: string, uploadId: string, body: Buffer, res: ServerResponse): Promise<void> {
    const dir = this.uploadDir(uploadId);
    let upload: { contentType: string; userMetadata: Record<string, string> };
    try {
      upload = JSON.parse(await readFile(join(dir, 'upload.json'), 'utf8'));
    } catch {
      throw new S3Failure(404, 'NoSuchUpload', 'The specified upload does not exist.');
    }
    const parts = [...body.toString('utf8').matchAll(/<Part>([\s\S]*?)<\/Part>/g)].map((m) => Number(/<PartNumber>(\d+)<\/PartNumber>/.exec(m[1]!)?.[1]));
    if (parts.length === 0) throw new S3Failure(400, 'MalformedXML', 'no parts listed');
    const buffers: Buffer[] = [];
    for (const p of parts) {
      try {
        buffers.push(await readFile(join(dir, `part-${p}`)));
      } catch {
        throw new S3Failure(400, 'InvalidPart', `part ${p} was not uploaded`);
      }
    }
    const etag = `${md5(Buffer.concat(buffers.map((b) => Buffer.from(md5(b), 'hex'))))}-${buffers.length}`;
    const meta = await this.writeObject(bucket, key, Buffer.concat(buffers), upload.contentType, upload.userMetadata, etag);
    await rm(dir, { recursive: true, force: true });
    await this.emit({ eventName: 'ObjectCreated:CompleteMultipartUpload', bucket: bucket.name, key, size: meta.size, etag: meta.etag });
    sendXml(res, 200, `<CompleteMultipartUploadResult><Bucket>${bucket.name}</Bucket><Key>${xmlEscape(key)}</Key><ETag>&quot;${meta.etag}&quot;</ETag></CompleteMultipartUploadResult>`);
  }

  private async abortUpload(uploadId: string, res: ServerResponse): Promise<void> {
    await rm(this.uploadDir(uploadId), { recursive: true, force: true });
    res.writeHead(204).end();
  }
}

// ---- helpers -----------------------------------------------------------------------------------

async function writeDurably(path: string, body: Buffer): Promise<void> {
  const fh = await open(path, 'w');
  try {
    await fh.writeFile(body);
    await fh.datasync();
  } finally {
    await fh.close();
  }
}

function sendXml(res: ServerResponse, status: number, body: string): void {
  const bytes = Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>\n${body}`, 'utf8');
  res.writeHead(status, { 'content-type': 'application/xml', 'content-length': bytes.length }).end(bytes);
}

function xmlEscape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

function xmlUnescape(s: string): string {
  return s
    .replace(/&#(\d+);/g, (_, d: string) => String.fromCodePoint(Number(d)))
    .replace(/&#x([0-9a-f]+);/gi, (_, h: string) => String.fromCodePoint(parseInt(h, 16)))
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, '&');
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return typeof v === 'string' ? v : undefined;
}

function contentTypeOf(req: IncomingMessage): string {
  return String(req.headers['content-type'] ?? 'binary/octet-stream');
}

function userMetadataOf(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) if (k.startsWith('x-amz-meta-') && typeof v === 'string') out[k.slice(11)] = v;
  return out;
}

async function drain(req: IncomingMessage): Promise<void> {
  for await (const _chunk of req) {
    // discard
  }
}

async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new S3Failure(400, 'EntityTooLarge', `Your proposed upload exceeds the maximum allowed size of ${limit} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** The request payload, with aws-chunked content encoding (signed or unsigned, with trailers) removed. */
async function readPayload(req: IncomingMessage, limit: number): Promise<Buffer> {
  const raw = await readBody(req, limit);
  const sha = String(req.headers['x-amz-content-sha256'] ?? '');
  const encoding = String(req.headers['content-encoding'] ?? '');
  if (!sha.startsWith('STREAMING-') && !encoding.includes('aws-chunked')) return raw;
  const out: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = raw.indexOf('\r\n', at);
    if (eol === -1) throw new S3Failure(400, 'IncompleteBody', 'truncated aws-chunked body');
    const size = parseInt(raw.toString('latin1', at, eol).split(';')[0]!, 16);
    if (!Number.isFinite(size)) throw new S3Failure(400, 'InvalidRequest', 'malformed aws-chunked body');
    at = eol + 2;
    if (size === 0) break;
    if (at + size > raw.length) throw new S3Failure(400, 'IncompleteBody', 'truncated aws-chunked body');
    out.push(raw.subarray(at, at + size));
    at += size + 2;
  }
  const body = Buffer.concat(out);
  const declared = req.headers['x-amz-decoded-content-length'];
  if (declared !== undefined && Number(declared) !== body.length) {
    throw new S3Failure(400, 'IncompleteBody', `decoded ${body.length} bytes; x-amz-decoded-content-length says ${declared}`);
  }
  return body;
}

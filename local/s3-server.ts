/**
 * The embedded stack's S3-compatible server: HTTP routing over the storage in `local/s3/`.
 *
 * Path-style and `<bucket>.localhost` addressing; request signatures are not checked (any
 * credentials work). What it implements, and what it answers 501 NotImplemented to, is listed in
 * docs/S3-COMPATIBILITY.md with ceph's s3-tests results. Bodies stream to disk; an object event is
 * durably queued before the client's request is answered.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EmbeddedS3ObjectStore } from '../shared/adapters/embedded-s3-object-store';
import type { ObjectStore } from '../shared/ports/object-store';
import type { S3EventInput } from '../shared/s3-event';
import * as buckets from './s3/bucket-handlers';
import { S3Error } from './s3/errors';
import { sendError } from './s3/http';
import { MultipartUploads } from './s3/multipart';
import * as multipart from './s3/multipart-handlers';
import * as objects from './s3/object-handlers';
import { resolveOperation, type OperationName, type Target } from './s3/operations';
import { ObjectStorage } from './s3/storage';

export interface S3ServerOptions {
  dataDir: string;
  host: string;
  port: number;
  /** Buckets created at start if they do not exist. */
  buckets: string[];
  onEvent?: (event: S3EventInput) => Promise<void>;
  /** Largest single PUT or part (S3's limit: 5 GiB). Bodies stream to disk, so this bounds disk, not memory. */
  maxRequestBytes?: number;
  /**
   * Fault injection for tests: return a status and S3 error code to fail the request with, or
   * 'reset' to drop the connection, or 'hang' to never answer.
   */
  faults?: (req: IncomingMessage) => { status: number; code: string } | 'reset' | 'hang' | undefined;
}

const FIVE_GIB = 5 * 1024 * 1024 * 1024;

export class LocalS3Server {
  private server!: Server;
  private readonly ctx: objects.ObjectContext;

  private constructor(
    private readonly options: S3ServerOptions,
    private readonly storage: ObjectStorage,
    uploads: MultipartUploads,
  ) {
    this.ctx = { storage, uploads, maxObjectBytes: options.maxRequestBytes ?? FIVE_GIB };
  }

  static async start(options: S3ServerOptions): Promise<LocalS3Server> {
    const storage = await ObjectStorage.open(options.dataDir, options.onEvent);
    for (const name of options.buckets) await storage.createBucket(name);
    const s = new LocalS3Server(options, storage, await MultipartUploads.open(storage));
    s.server = createServer((req, res) => void s.handle(req, res));
    s.server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => void s.handle(req, res, true));
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
    await this.storage.close();
  }

  /** The same storage as an in-process ObjectStore, for the stack's own workers. */
  objectStore(): ObjectStore {
    return new EmbeddedS3ObjectStore(this.storage);
  }

  private async handle(req: IncomingMessage, res: ServerResponse, expectsContinue = false): Promise<void> {
    const requestId = randomUUID().replace(/-/g, '').slice(0, 16).toUpperCase();
    res.setHeader('x-amz-request-id', requestId);
    res.setHeader('x-amz-id-2', requestId);
    res.setHeader('server', 'pipeline-local-s3');
    try {
      const fault = this.options.faults?.(req);
      if (fault === 'reset') return void req.socket.destroy();
      if (fault === 'hang') return;
      if (fault) throw new S3Error(fault.status, fault.code, 'injected fault');
      const { op, target, q } = this.resolve(req);
      // A client waiting for 100 Continue hears about a missing bucket or upload before it sends the body.
      if (expectsContinue) {
        if (target.kind !== 'service') this.storage.bucket(target.bucket);
        if (target.kind === 'object' && (op === 'UploadPart' || op === 'UploadPartCopy'))
          this.ctx.uploads.get(q.get('uploadId') ?? '', target.bucket, target.key);
        res.writeContinue();
      }
      await this.dispatch(op, target, q, req, res);
    } catch (err) {
      const failure = err instanceof S3Error ? err : new S3Error(500, 'InternalError', (err as Error).message);
      if (failure.status === 500) console.error(`[s3] ${req.method} ${req.url}: ${(err as Error).stack ?? err}`);
      if (res.headersSent) {
        res.destroy();
        return;
      }
      sendError(req, res, failure, requestId);
    }
  }

  private resolve(req: IncomingMessage): { op: OperationName; target: Target; q: URLSearchParams } {
    const rawUrl = req.url ?? '/';
    const q = new URL(rawUrl, 'http://localhost').searchParams;
    // The raw path, not url.pathname: URL parsing resolves '.' and '..' segments, and in S3 they are
    // ordinary characters of a key. Keys never become file paths here (objects are stored by hash).
    let pathname = rawUrl.split('?')[0]!;
    if (!pathname.startsWith('/')) pathname = `/${pathname}`;
    const hostBucket = this.virtualHostBucket(req.headers.host);
    if (hostBucket) pathname = `/${hostBucket}${pathname}`;
    const slash = pathname.indexOf('/', 1);
    let bucket: string;
    let key: string;
    try {
      bucket = decodeURIComponent(slash === -1 ? pathname.slice(1) : pathname.slice(1, slash));
      key = slash === -1 ? '' : decodeURIComponent(pathname.slice(slash + 1));
    } catch {
      throw new S3Error(400, 'InvalidURI', "Couldn't parse the specified URI.");
    }
    // S3 refuses C1 control characters in a key as an unparseable URI.
    if (/[\u0080-\u009f]/.test(key)) throw new S3Error(400, 'InvalidURI', "Couldn't parse the specified URI.");
    const target: Target = !bucket ? { kind: 'service' } : !key ? { kind: 'bucket', bucket } : { kind: 'object', bucket, key };
    if (target.kind === 'object' && Buffer.byteLength(key, 'utf8') > 1024) throw new S3Error(400, 'KeyTooLongError', 'Your key is too long');
    return { op: resolveOperation(req.method ?? 'GET', target, q, req), target, q };
  }

  private async dispatch(op: OperationName, target: Target, q: URLSearchParams, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const ctx = this.ctx;
    if (target.kind === 'service') return buckets.listBuckets(ctx, q, req, res);
    const { bucket } = target;
    if (target.kind === 'bucket') {
      switch (op) {
        case 'CreateBucket':
          return buckets.createBucket(ctx, bucket, req, res);
        case 'DeleteBucket':
          return buckets.deleteBucket(ctx, bucket, req, res);
        case 'HeadBucket':
          return buckets.headBucket(ctx, bucket, q, req, res);
        case 'GetBucketLocation':
          return buckets.getBucketLocation(ctx, bucket, req, res);
        case 'GetBucketAcl':
          return objects.getObjectAcl(ctx, bucket, undefined, req, res);
        case 'PutBucketAcl':
          return objects.putCannedAcl(ctx, bucket, undefined, req, res);
        case 'ListObjects':
        case 'ListObjectsV2':
          return buckets.listObjects(ctx, bucket, q, req, res, op === 'ListObjectsV2');
        case 'ListObjectVersions':
          return buckets.listObjectVersions(ctx, bucket, q, req, res);
        case 'ListMultipartUploads':
          return buckets.listMultipartUploads(ctx, bucket, q, req, res);
        case 'DeleteObjects':
          return buckets.deleteObjects(ctx, bucket, req, res);
        default:
          break;
      }
    } else {
      const { key } = target;
      switch (op) {
        case 'PutObject':
          return objects.putObject(ctx, bucket, key, req, res);
        case 'CopyObject':
          return objects.copyObject(ctx, bucket, key, req, res);
        case 'GetObject':
        case 'HeadObject':
          return objects.getObject(ctx, bucket, key, q, req, res);
        case 'GetObjectAcl':
          return objects.getObjectAcl(ctx, bucket, key, req, res);
        case 'PutObjectAcl':
          return objects.putCannedAcl(ctx, bucket, key, req, res);
        case 'DeleteObject':
          return objects.deleteObject(ctx, bucket, key, req, res);
        case 'CreateMultipartUpload':
          return multipart.createUpload(ctx, bucket, key, req, res);
        case 'UploadPart':
          return multipart.uploadPart(ctx, bucket, key, q, req, res);
        case 'UploadPartCopy':
          return multipart.uploadPartCopy(ctx, bucket, key, q, req, res);
        case 'CompleteMultipartUpload':
          return multipart.completeUpload(ctx, bucket, key, q, req, res);
        case 'AbortMultipartUpload':
          return multipart.abortUpload(ctx, bucket, key, q, req, res);
        case 'ListParts':
          return multipart.listParts(ctx, bucket, key, q, req, res);
        default:
          break;
      }
    }
    throw new S3Error(500, 'InternalError', `operation ${op} is not routed for a ${target.kind}`);
  }

  private virtualHostBucket(host: string | undefined): string | undefined {
    if (!host) return undefined;
    const name = host.replace(/:\d+$/, '');
    const dot = name.indexOf('.');
    if (dot <= 0) return undefined;
    const candidate = name.slice(0, dot);
    return this.storage.hasBucket(candidate) && /^localhost$|^127\.0\.0\.1$/.test(name.slice(dot + 1)) ? candidate : undefined;
  }
}

/** Object operations of the embedded S3 server: put, get/head, copy, delete, multipart parts and completion. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { receiveBody, readSmallBody } from './body';
import { S3Error, invalidArgument, noSuchKey, notImplemented, preconditionFailed } from './errors';
import { attributesOf, drain, header, headerBytes, httpDate, isoTime, sendXml } from './http';
import { checkPartNumber, partRange, type MultipartUploads } from './multipart';
import { writeAll, type ObjectBytes, type Sink } from './sinks';
import { unquote, type ObjectStorage, type OpenedObject, type StoredObject, type WriteCondition } from './storage';
import { pipeline } from 'node:stream/promises';

export interface ObjectContext {
  storage: ObjectStorage;
  uploads: MultipartUploads;
  /** Largest single PUT or part. */
  maxObjectBytes: number;
}

export const OWNER = { ID: 'local', DisplayName: 'local' };
export const XML_BODY_LIMIT = 2 * 1024 * 1024;

export function writeCondition(req: IncomingMessage): WriteCondition {
  return { ifMatch: header(req, 'if-match'), ifNoneMatch: header(req, 'if-none-match') };
}

export async function putObject(ctx: ObjectContext, bucket: string, key: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const attributes = attributesOf(req);
  const body = await receiveBody(req, ctx.storage.newBody(bucket, key), ctx.maxObjectBytes);
  const meta = await ctx.storage.commit(
    bucket,
    key,
    { ...body.bytes, size: body.size, etag: body.md5 },
    { ...attributes, ...(Object.keys(body.checksums).length > 0 ? { checksums: body.checksums } : {}) },
    writeCondition(req),
    'ObjectCreated:Put',
  );
  res.writeHead(200, { etag: `"${meta.etag}"`, ...checksumHeaders(meta) }).end();
}

function checksumHeaders(meta: StoredObject): Record<string, string> {
  return Object.fromEntries(Object.entries(meta.checksums ?? {}).map(([alg, v]) => [`x-amz-checksum-${alg}`, v]));
}

/** Evaluates GET/HEAD preconditions as RFC 9110 orders them: 412 or 304, or nothing. */
function checkReadConditions(req: IncomingMessage, meta: StoredObject): void {
  const seconds = Math.floor(Date.parse(meta.lastModified) / 1000);
  const date = (name: string) => {
    const v = header(req, name);
    const t = v === undefined ? NaN : Date.parse(v);
    return Number.isNaN(t) ? undefined : Math.floor(t / 1000);
  };
  const matches = (list: string) =>
    list
      .split(',')
      .map((e) => e.trim())
      .some((e) => e === '*' || unquote(e) === meta.etag);
  const ifMatch = header(req, 'if-match');
  const ifNoneMatch = header(req, 'if-none-match');
  const notModified = () => new S3Error(304, 'NotModified', 'Not Modified', { etag: `"${meta.etag}"`, 'last-modified': httpDate(meta.lastModified) });
  if (ifMatch !== undefined) {
    if (!matches(ifMatch)) throw preconditionFailed();
  } else {
    const unmodifiedSince = date('if-unmodified-since');
    if (unmodifiedSince !== undefined && seconds > unmodifiedSince) throw preconditionFailed();
  }
  if (ifNoneMatch !== undefined) {
    if (matches(ifNoneMatch)) throw notModified();
  } else {
    const modifiedSince = date('if-modified-since');
    if (modifiedSince !== undefined && seconds <= modifiedSince) throw notModified();
  }
}

/** A Range header's byte range, undefined for none or one S3 ignores; 416 when it cannot be satisfied. */
function byteRange(range: string | undefined, size: number): { start: number; end: number } | undefined {
  if (range === undefined) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  const unsatisfiable = () => new S3Error(416, 'InvalidRange', 'The requested range is not satisfiable', { 'content-range': `bytes */${size}` });
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) throw unsatisfiable();
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(size - 1, Number(m[2]));
  if (m[2] !== '' && Number(m[2]) < start) return undefined;
  if (start >= size) throw unsatisfiable();
  return { start, end };
}

/** The byte range of part `n` of an object; a single-part object has one part, itself (none when empty). */
function partOf(meta: StoredObject, n: number): { start: number; end: number } | undefined {
  checkPartNumber(n);
  const range = partRange(meta, n);
  if (!range) throw new S3Error(400, 'InvalidPart', `The object has ${meta.parts?.length ?? 1} part(s); part ${n} does not exist`);
  return meta.size === 0 ? undefined : range;
}

const OVERRIDES: Record<string, string> = {
  'response-content-type': 'content-type',
  'response-content-language': 'content-language',
  'response-expires': 'expires',
  'response-cache-control': 'cache-control',
  'response-content-disposition': 'content-disposition',
  'response-content-encoding': 'content-encoding',
};

export async function getObject(ctx: ObjectContext, bucket: string, key: string, q: URLSearchParams, req: IncomingMessage, res: ServerResponse): Promise<void> {
  await drain(req);
  const opened = await ctx.storage.openObject(bucket, key);
  if (!opened) throw noSuchKey();
  const { meta } = opened;
  let streaming = false;
  try {
    checkReadConditions(req, meta);
    const headers: Record<string, string | number> = {
      'content-type': meta.contentType,
      etag: `"${meta.etag}"`,
      'last-modified': httpDate(meta.lastModified),
      'accept-ranges': 'bytes',
      ...meta.headers,
    };
    for (const [k, v] of Object.entries(meta.userMetadata)) headers[`x-amz-meta-${k}`] = headerBytes(v);
    for (const [param, name] of Object.entries(OVERRIDES)) {
      const v = q.get(param);
      if (v !== null) headers[name] = v;
    }
    if (meta.parts) headers['x-amz-mp-parts-count'] = meta.parts.length;
    const partNumber = q.get('partNumber');
    const range = partNumber !== null ? partOf(meta, Number(partNumber)) : byteRange(header(req, 'range'), meta.size);
    const status = range ? 206 : 200;
    if (range) headers['content-range'] = `bytes ${range.start}-${range.end}/${meta.size}`;
    const length = range ? range.end - range.start + 1 : meta.size;
    headers['content-length'] = length;
    if (!range && header(req, 'x-amz-checksum-mode') === 'ENABLED') Object.assign(headers, checksumHeaders(meta));
    res.writeHead(status, headers);
    if (req.method === 'HEAD' || length === 0) {
      res.end();
      return;
    }
    streaming = true;
    await pipeObject(opened, range?.start ?? 0, range?.end ?? meta.size - 1, res);
  } finally {
    if (!streaming) await opened.close();
  }
}

/** Streams bytes start..end of an open object to the response; closes the object however it ends (a destroyed response included). */
async function pipeObject(source: OpenedObject, start: number, end: number, res: ServerResponse): Promise<void> {
  try {
    await pipeline(source.stream(start, end), res);
  } catch (err) {
    // A client that goes away mid-download is not a server error.
    if ((err as NodeJS.ErrnoException).code !== 'ERR_STREAM_PREMATURE_CLOSE') throw err;
  } finally {
    await source.close();
  }
}

/** Copies bytes start..end of an open object into `sink`; where they are, their size and hex MD5. */
export function copyRange<T>(source: OpenedObject, start: number, end: number, sink: Sink<T>): Promise<{ size: number; md5: string; bytes: T }> {
  return writeAll(sink, source.stream(start, end) as AsyncIterable<Buffer>);
}

/** The source of a copy (x-amz-copy-source: [/]bucket/key[?versionId=null], URL-encoded), opened, its preconditions checked. */
export async function openCopySource(ctx: ObjectContext, req: IncomingMessage): Promise<{ bucket: string; key: string; source: OpenedObject }> {
  const raw = header(req, 'x-amz-copy-source') ?? '';
  const [path, query] = raw.split('?') as [string, string | undefined];
  const version = query ? new URLSearchParams(query).get('versionId') : null;
  if (version !== null && version !== 'null') throw invalidArgument('Invalid version id specified');
  let decoded: string;
  try {
    decoded = decodeURIComponent(path.replace(/^\//, ''));
  } catch {
    throw invalidArgument('Invalid copy source encoding');
  }
  const slash = decoded.indexOf('/');
  if (slash <= 0 || slash === decoded.length - 1) throw invalidArgument('Copy Source must mention the source bucket and key: sourcebucket/sourcekey');
  const bucket = decoded.slice(0, slash);
  const key = decoded.slice(slash + 1);
  const opened = await ctx.storage.openObject(bucket, key);
  if (!opened) throw noSuchKey();
  try {
    checkCopySourceConditions(req, opened.meta);
  } catch (err) {
    await opened.close();
    throw err;
  }
  return { bucket, key, source: opened };
}

function checkCopySourceConditions(req: IncomingMessage, meta: StoredObject): void {
  const seconds = Math.floor(Date.parse(meta.lastModified) / 1000);
  const date = (name: string) => {
    const v = header(req, name);
    return v === undefined || Number.isNaN(Date.parse(v)) ? undefined : Math.floor(Date.parse(v) / 1000);
  };
  const match = header(req, 'x-amz-copy-source-if-match');
  const noneMatch = header(req, 'x-amz-copy-source-if-none-match');
  const same = (v: string) => v.split(',').some((e) => e.trim() === '*' || unquote(e) === meta.etag);
  if (match !== undefined && !same(match)) throw preconditionFailed();
  if (noneMatch !== undefined && same(noneMatch)) throw preconditionFailed();
  const unmodified = date('x-amz-copy-source-if-unmodified-since');
  if (match === undefined && unmodified !== undefined && seconds > unmodified) throw preconditionFailed();
  const modified = date('x-amz-copy-source-if-modified-since');
  if (noneMatch === undefined && modified !== undefined && seconds <= modified) throw preconditionFailed();
}

export async function copyObject(ctx: ObjectContext, bucket: string, key: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  await drain(req);
  ctx.storage.bucket(bucket);
  const directive = header(req, 'x-amz-metadata-directive') ?? 'COPY';
  if (directive !== 'COPY' && directive !== 'REPLACE') throw invalidArgument('Unknown metadata directive.');
  const { source, ...from } = await openCopySource(ctx, req);
  let copied: { size: number; md5: string; bytes: ObjectBytes };
  try {
    if (from.bucket === bucket && from.key === key && directive === 'COPY') {
      throw new S3Error(
        400,
        'InvalidRequest',
        "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
      );
    }
    copied = await copyRange(source, 0, source.meta.size - 1, ctx.storage.newBody(bucket, key));
  } finally {
    await source.close();
  }
  const attributes =
    directive === 'REPLACE'
      ? attributesOf(req)
      : { contentType: source.meta.contentType, userMetadata: source.meta.userMetadata, ...(source.meta.headers ? { headers: source.meta.headers } : {}) };
  const meta = await ctx.storage.commit(
    bucket,
    key,
    { ...copied.bytes, size: copied.size, etag: copied.md5 },
    attributes,
    writeCondition(req),
    'ObjectCreated:Copy',
  );
  sendXml(res, 200, 'CopyObjectResult', { LastModified: isoTime(meta.lastModified), ETag: `"${meta.etag}"` });
}

export async function deleteObject(ctx: ObjectContext, bucket: string, key: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  await drain(req);
  const lastModified = header(req, 'x-amz-if-match-last-modified-time');
  const size = header(req, 'x-amz-if-match-size');
  await ctx.storage.remove(bucket, key, {
    ifMatch: header(req, 'if-match'),
    ifMatchLastModifiedTime: lastModified !== undefined ? new Date(lastModified) : undefined,
    ifMatchSize: size !== undefined ? Number(size) : undefined,
  });
  res.writeHead(204).end();
}

export async function getObjectAcl(ctx: ObjectContext, bucket: string, key: string | undefined, req: IncomingMessage, res: ServerResponse): Promise<void> {
  await drain(req);
  if (key !== undefined && !ctx.storage.head(bucket, key)) throw noSuchKey();
  ctx.storage.bucket(bucket);
  sendXml(res, 200, 'AccessControlPolicy', {
    Owner: OWNER,
    AccessControlList: {
      Grant: [{ Grantee: { '@_xmlns:xsi': 'http://www.w3.org/2001/XMLSchema-instance', '@_xsi:type': 'CanonicalUser', ...OWNER }, Permission: 'FULL_CONTROL' }],
    },
  });
}

/**
 * PutObjectAcl / PutBucketAcl with a canned ACL (or none) and no grant document: accepted and
 * nothing changes, since the server has no access control to set. An ACL document is refused 501.
 */
export async function putCannedAcl(ctx: ObjectContext, bucket: string, key: string | undefined, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const body = await readSmallBody(req, XML_BODY_LIMIT);
  if (body.toString('utf8').trim() !== '') throw notImplemented('access control policies (only canned ACLs, which change nothing here, are accepted)');
  if (key !== undefined && !ctx.storage.head(bucket, key)) throw noSuchKey();
  ctx.storage.bucket(bucket);
  res.writeHead(200).end();
}

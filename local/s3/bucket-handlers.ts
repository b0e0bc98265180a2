/** Service and bucket operations of the embedded S3 server: buckets, listings, multi-object delete. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readSmallBody } from './body';
import { createDigest } from './checksums';
import { S3Error, invalidArgument, malformedXml } from './errors';
import { drain, header, intParam, isoTime, sendXml } from './http';
import { compareKeys } from './key-order';
import { OWNER, type ObjectContext } from './object-handlers';
import type { StoredObject } from './storage';
import { S3_XMLNS, parseXml, xmlEscape, xmlText, type XmlNode } from './xml';

const XML_BODY_LIMIT = 2 * 1024 * 1024;
const MAX_DELETE_KEYS = 1000;

export async function listBuckets(ctx: ObjectContext, q: URLSearchParams, req: IncomingMessage, res: ServerResponse): Promise<void> {
  await drain(req);
  const max = intParam(q, 'max-buckets', 10_000, 10_000);
  const token = q.get('continuation-token');
  const after = token ? Buffer.from(token, 'base64').toString('utf8') : '';
  const prefix = q.get('prefix') ?? '';
  const matching = ctx.storage.listBuckets().filter((b) => b.name.startsWith(prefix) && (!after || compareKeys(b.name, after) > 0));
  const page = matching.slice(0, max);
  sendXml(res, 200, 'ListAllMyBucketsResult', {
    Owner: OWNER,
    Buckets: { Bucket: page.map((b) => ({ Name: b.name, CreationDate: isoTime(b.createdAt), BucketRegion: 'us-east-1' })) },
    ContinuationToken: matching.length > page.length ? Buffer.from(page.at(-1)!.name, 'utf8').toString('base64') : undefined,
    Prefix: q.has('prefix') ? prefix : undefined,
  });
}

export async function createBucket(ctx: ObjectContext, bucket: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const body = await readSmallBody(req, XML_BODY_LIMIT);
  // One region here: a LocationConstraint is kept and reported by GetBucketLocation, nothing more.
  const location = body.toString('utf8').trim() !== '' ? (xmlText(parseXml(body, 'CreateBucketConfiguration'), 'LocationConstraint') ?? '') : '';
  await ctx.storage.createBucket(bucket, location);
  res.writeHead(200, { location: `/${bucket}` }).end();
}

export async function deleteBucket(ctx: ObjectContext, bucket: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  await drain(req);
  if (ctx.uploads.inProgress(bucket).length > 0 && ctx.storage.bucket(bucket).size === 0) {
    for (const u of ctx.uploads.inProgress(bucket)) await ctx.uploads.abort(u.uploadId, u.bucket, u.key);
  }
  await ctx.storage.deleteBucket(bucket);
  res.writeHead(204).end();
}

export async function headBucket(ctx: ObjectContext, bucket: string, q: URLSearchParams, req: IncomingMessage, res: ServerResponse): Promise<void> {
  await drain(req);
  const b = ctx.storage.bucket(bucket);
  const headers: Record<string, string | number> = { 'x-amz-bucket-region': 'us-east-1' };
  // Ceph RGW's HeadBucket extension (?read-stats=true), which its s3-tests use.
  if (q.get('read-stats') === 'true') {
    headers['x-rgw-object-count'] = b.size;
    headers['x-rgw-bytes-used'] = [...b.values()].reduce((n, o) => n + o.size, 0);
  }
  res.writeHead(200, headers).end();
}

export async function getBucketLocation(ctx: ObjectContext, bucket: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  await drain(req);
  const { location } = ctx.storage.bucket(bucket);
  const bytes = Buffer.from(
    `<?xml version="1.0" encoding="UTF-8"?>\n<LocationConstraint xmlns="${S3_XMLNS}">${xmlEscape(location)}</LocationConstraint>`,
    'utf8',
  );
  res.writeHead(200, { 'content-type': 'application/xml', 'content-length': bytes.length }).end(bytes);
}

function encoder(q: URLSearchParams): (s: string) => string {
  const type = q.get('encoding-type');
  if (type === null) return (s) => s;
  if (type !== 'url') throw invalidArgument('Invalid Encoding Method specified in Request');
  return (s) => encodeURIComponent(s).replace(/%2F/g, '/');
}

function objectEntry(meta: StoredObject, enc: (s: string) => string, withOwner: boolean) {
  return {
    Key: enc(meta.key),
    LastModified: isoTime(meta.lastModified),
    ETag: `"${meta.etag}"`,
    Size: meta.size,
    StorageClass: 'STANDARD',
    ...(withOwner ? { Owner: OWNER } : {}),
  };
}

export async function listObjects(
  ctx: ObjectContext,
  bucket: string,
  q: URLSearchParams,
  req: IncomingMessage,
  res: ServerResponse,
  v2: boolean,
): Promise<void> {
  await drain(req);
  const enc = encoder(q);
  const prefix = q.get('prefix') ?? '';
  const delimiter = q.get('delimiter') ?? '';
  const maxKeys = intParam(q, 'max-keys', 1000, 1000);
  const token = q.get('continuation-token');
  const startAfter = q.get('start-after') ?? '';
  const marker = q.get('marker') ?? '';
  const after = v2 ? (token ? decodeToken(token) : startAfter) : marker;
  const page = ctx.storage.list(bucket, { prefix, delimiter, after, maxKeys });
  const common = page.commonPrefixes.map((p) => ({ Prefix: enc(p) }));
  if (v2) {
    sendXml(res, 200, 'ListBucketResult', {
      Name: bucket,
      Prefix: enc(prefix),
      ...(token !== null ? { ContinuationToken: token } : {}),
      ...(page.truncated ? { NextContinuationToken: Buffer.from(page.last, 'utf8').toString('base64') } : {}),
      ...(startAfter ? { StartAfter: enc(startAfter) } : {}),
      KeyCount: page.contents.length + page.commonPrefixes.length,
      MaxKeys: maxKeys,
      ...(delimiter ? { Delimiter: enc(delimiter) } : {}),
      IsTruncated: page.truncated,
      ...(q.has('encoding-type') ? { EncodingType: 'url' } : {}),
      Contents: page.contents.map((m) => objectEntry(m, enc, q.get('fetch-owner') === 'true')),
      CommonPrefixes: common,
    });
    return;
  }
  sendXml(res, 200, 'ListBucketResult', {
    Name: bucket,
    Prefix: prefix,
    Marker: enc(marker),
    ...(page.truncated && delimiter ? { NextMarker: enc(page.last) } : {}),
    MaxKeys: maxKeys,
    ...(delimiter ? { Delimiter: enc(delimiter) } : {}),
    IsTruncated: page.truncated,
    ...(q.has('encoding-type') ? { EncodingType: 'url' } : {}),
    Contents: page.contents.map((m) => objectEntry(m, enc, true)),
    CommonPrefixes: common,
  });
}

function decodeToken(token: string): string {
  const decoded = Buffer.from(token, 'base64');
  if (decoded.length === 0 || decoded.toString('base64').replace(/=+$/, '') !== token.replace(/=+$/, '')) {
    throw invalidArgument('The continuation token provided is incorrect');
  }
  return decoded.toString('utf8');
}

/** ListObjectVersions on a bucket without versioning: every object is its only version, "null". */
export async function listObjectVersions(ctx: ObjectContext, bucket: string, q: URLSearchParams, req: IncomingMessage, res: ServerResponse): Promise<void> {
  await drain(req);
  const enc = encoder(q);
  const prefix = q.get('prefix') ?? '';
  const delimiter = q.get('delimiter') ?? '';
  const maxKeys = intParam(q, 'max-keys', 1000, 1000);
  const keyMarker = q.get('key-marker') ?? '';
  const page = ctx.storage.list(bucket, { prefix, delimiter, after: keyMarker, maxKeys });
  sendXml(res, 200, 'ListVersionsResult', {
    Name: bucket,
    Prefix: enc(prefix),
    KeyMarker: enc(keyMarker),
    VersionIdMarker: q.get('version-id-marker') ?? '',
    ...(page.truncated ? { NextKeyMarker: enc(page.last), NextVersionIdMarker: 'null' } : {}),
    MaxKeys: maxKeys,
    ...(delimiter ? { Delimiter: enc(delimiter) } : {}),
    IsTruncated: page.truncated,
    ...(q.has('encoding-type') ? { EncodingType: 'url' } : {}),
    Version: page.contents.map((m) => ({ ...objectEntry(m, enc, true), VersionId: 'null', IsLatest: true })),
    CommonPrefixes: page.commonPrefixes.map((p) => ({ Prefix: enc(p) })),
  });
}

export async function listMultipartUploads(ctx: ObjectContext, bucket: string, q: URLSearchParams, req: IncomingMessage, res: ServerResponse): Promise<void> {
  await drain(req);
  ctx.storage.bucket(bucket);
  const enc = encoder(q);
  const prefix = q.get('prefix') ?? '';
  const delimiter = q.get('delimiter') ?? '';
  const keyMarker = q.get('key-marker') ?? '';
  const uploadIdMarker = q.get('upload-id-marker') ?? '';
  const maxUploads = intParam(q, 'max-uploads', 1000, 1000);
  const uploads = [];
  const prefixes: string[] = [];
  let truncated = false;
  for (const u of ctx.uploads.inProgress(bucket)) {
    if (!u.key.startsWith(prefix)) continue;
    const order = compareKeys(u.key, keyMarker);
    if (keyMarker && (order < 0 || (order === 0 && (!uploadIdMarker || u.uploadId <= uploadIdMarker)))) continue;
    const cut = delimiter ? u.key.indexOf(delimiter, prefix.length) : -1;
    const common = cut === -1 ? undefined : u.key.slice(0, cut + delimiter.length);
    if (common !== undefined && (prefixes.at(-1) === common || common === keyMarker)) continue;
    if (uploads.length + prefixes.length >= maxUploads) {
      truncated = true;
      break;
    }
    if (common !== undefined) prefixes.push(common);
    else uploads.push(u);
  }
  const last = uploads.at(-1);
  sendXml(res, 200, 'ListMultipartUploadsResult', {
    Bucket: bucket,
    KeyMarker: enc(keyMarker),
    UploadIdMarker: uploadIdMarker,
    ...(truncated && last ? { NextKeyMarker: enc(last.key), NextUploadIdMarker: last.uploadId } : {}),
    Prefix: enc(prefix),
    ...(delimiter ? { Delimiter: enc(delimiter) } : {}),
    MaxUploads: maxUploads,
    IsTruncated: truncated,
    ...(q.has('encoding-type') ? { EncodingType: 'url' } : {}),
    Upload: uploads.map((u) => ({
      Key: enc(u.key),
      UploadId: u.uploadId,
      Initiator: OWNER,
      Owner: OWNER,
      StorageClass: 'STANDARD',
      Initiated: isoTime(u.initiated),
    })),
    CommonPrefixes: prefixes.map((p) => ({ Prefix: enc(p) })),
  });
}

export async function deleteObjects(ctx: ObjectContext, bucket: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  ctx.storage.bucket(bucket);
  const body = await readSmallBody(req, XML_BODY_LIMIT);
  const contentMd5 = header(req, 'content-md5');
  if (contentMd5 !== undefined) {
    const md5 = createDigest('md5');
    md5.update(body);
    if (md5.digest() !== contentMd5) throw new S3Error(400, 'BadDigest', 'The Content-MD5 you specified did not match what we received.');
  }
  const doc = parseXml(body, 'Delete');
  const objects = (doc.Object ?? []) as XmlNode[];
  if (objects.length === 0 || objects.length > MAX_DELETE_KEYS) throw malformedXml();
  const quiet = xmlText(doc, 'Quiet')?.trim().toLowerCase() === 'true';
  const deleted: Array<Record<string, string>> = [];
  const errors: Array<Record<string, string>> = [];
  for (const o of objects) {
    const key = xmlText(o, 'Key');
    if (key === undefined) throw malformedXml();
    const version = xmlText(o, 'VersionId');
    if (version !== undefined && version !== 'null') {
      errors.push({ Key: key, VersionId: version, Code: 'NoSuchVersion', Message: 'The specified version does not exist.' });
      continue;
    }
    const lastModified = xmlText(o, 'LastModifiedTime');
    const size = xmlText(o, 'Size');
    try {
      await ctx.storage.remove(bucket, key, {
        ifMatch: xmlText(o, 'ETag'),
        ifMatchLastModifiedTime: lastModified !== undefined ? new Date(lastModified) : undefined,
        ifMatchSize: size !== undefined ? Number(size) : undefined,
      });
      if (!quiet) deleted.push({ Key: key, ...(version !== undefined ? { VersionId: version } : {}) });
    } catch (err) {
      if (!(err instanceof S3Error)) throw err;
      errors.push({ Key: key, Code: err.code, Message: err.message });
    }
  }
  sendXml(res, 200, 'DeleteResult', { Deleted: deleted, Error: errors });
}

/** Multipart upload operations of the embedded S3 server: create, upload (or copy) a part, complete, abort, list parts. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readSmallBody, receiveBody } from './body';
import { S3Error, invalidArgument, malformedXml } from './errors';
import { drain, header, isoTime, sendXml, attributesOf } from './http';
import { checkPartNumber } from './multipart';
import { copyRange, OWNER, openCopySource, writeCondition, XML_BODY_LIMIT, type ObjectContext } from './object-handlers';
import { FileSink } from './sinks';
import { parseXml, xmlText, type XmlNode } from './xml';

export async function createUpload(ctx: ObjectContext, bucket: string, key: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  await drain(req);
  const upload = await ctx.uploads.create(bucket, key, attributesOf(req));
  sendXml(res, 200, 'InitiateMultipartUploadResult', { Bucket: bucket, Key: key, UploadId: upload.uploadId });
}

function partNumberOf(q: URLSearchParams): number {
  const raw = q.get('partNumber');
  if (raw === null || !/^\d+$/.test(raw)) throw invalidArgument('Part number must be an integer between 1 and 10000, inclusive');
  const n = Number(raw);
  checkPartNumber(n);
  return n;
}

export async function uploadPart(
  ctx: ObjectContext,
  bucket: string,
  key: string,
  q: URLSearchParams,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const upload = ctx.uploads.get(q.get('uploadId') ?? '', bucket, key);
  const partNumber = partNumberOf(q);
  const { dataFile, path } = ctx.uploads.partPath(upload);
  const body = await receiveBody(req, await FileSink.create(path), ctx.maxObjectBytes);
  const part = await ctx.uploads.addPart(upload, partNumber, dataFile, body.size, body.md5);
  const checksums = Object.fromEntries(Object.entries(body.checksums).map(([alg, v]) => [`x-amz-checksum-${alg}`, v]));
  res.writeHead(200, { etag: `"${part.etag}"`, ...checksums }).end();
}

/** x-amz-copy-source-range: `bytes=first-last`, both present, within the source. */
function copySourceRange(raw: string | undefined, size: number): { start: number; end: number } {
  if (raw === undefined) return { start: 0, end: size - 1 };
  const m = /^bytes=(\d+)-(\d+)$/.exec(raw.trim());
  if (!m)
    throw invalidArgument(
      'The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy',
    );
  const start = Number(m[1]);
  const end = Number(m[2]);
  if (end < start) throw invalidArgument('The x-amz-copy-source-range value must be of the form bytes=first-last where first <= last');
  if (end >= size) throw new S3Error(400, 'InvalidRange', `The requested range is not satisfiable: the source object is ${size} bytes`);
  return { start, end };
}

export async function uploadPartCopy(
  ctx: ObjectContext,
  bucket: string,
  key: string,
  q: URLSearchParams,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  await drain(req);
  const upload = ctx.uploads.get(q.get('uploadId') ?? '', bucket, key);
  const partNumber = partNumberOf(q);
  const { source } = await openCopySource(ctx, req);
  const { dataFile, path } = ctx.uploads.partPath(upload);
  let copied: { size: number; md5: string };
  try {
    const range = copySourceRange(header(req, 'x-amz-copy-source-range'), source.meta.size);
    copied = await copyRange(source, range.start, range.end, await FileSink.create(path));
  } finally {
    await source.close();
  }
  const part = await ctx.uploads.addPart(upload, partNumber, dataFile, copied.size, copied.md5);
  sendXml(res, 200, 'CopyPartResult', { LastModified: isoTime(part.lastModified), ETag: `"${part.etag}"` });
}

export async function completeUpload(
  ctx: ObjectContext,
  bucket: string,
  key: string,
  q: URLSearchParams,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const doc = parseXml(await readSmallBody(req, XML_BODY_LIMIT), 'CompleteMultipartUpload');
  const parts = ((doc.Part ?? []) as XmlNode[]).map((p) => {
    const n = xmlText(p, 'PartNumber')?.trim();
    const etag = xmlText(p, 'ETag');
    if (!n || !/^\d+$/.test(n) || etag === undefined) throw malformedXml();
    return { partNumber: Number(n), etag };
  });
  const { etag } = await ctx.uploads.complete(q.get('uploadId') ?? '', bucket, key, parts, writeCondition(req));
  sendXml(res, 200, 'CompleteMultipartUploadResult', { Location: `/${bucket}/${encodeURIComponent(key)}`, Bucket: bucket, Key: key, ETag: `"${etag}"` });
}

export async function abortUpload(
  ctx: ObjectContext,
  bucket: string,
  key: string,
  q: URLSearchParams,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  await drain(req);
  await ctx.uploads.abort(q.get('uploadId') ?? '', bucket, key);
  res.writeHead(204).end();
}

export async function listParts(ctx: ObjectContext, bucket: string, key: string, q: URLSearchParams, req: IncomingMessage, res: ServerResponse): Promise<void> {
  await drain(req);
  const upload = ctx.uploads.get(q.get('uploadId') ?? '', bucket, key);
  const marker = Number(q.get('part-number-marker') ?? 0) || 0;
  const maxParts = Math.min(1000, Number(q.get('max-parts') ?? 1000) || 1000);
  const after = (await ctx.uploads.parts(upload)).filter((p) => p.partNumber > marker);
  const page = after.slice(0, maxParts);
  const truncated = after.length > page.length;
  sendXml(res, 200, 'ListPartsResult', {
    Bucket: bucket,
    Key: key,
    UploadId: upload.uploadId,
    PartNumberMarker: marker,
    NextPartNumberMarker: page.at(-1)?.partNumber ?? marker,
    MaxParts: maxParts,
    IsTruncated: truncated,
    Part: page.map((p) => ({ PartNumber: p.partNumber, LastModified: isoTime(p.lastModified), ETag: `"${p.etag}"`, Size: p.size })),
    Initiator: OWNER,
    Owner: OWNER,
    StorageClass: 'STANDARD',
  });
}

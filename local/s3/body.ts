/**
 * Receives a request body into a sink (a small object's bytes in memory, a data file past that):
 * aws-chunked decoding, size limit, MD5 (the ETag) and every checksum the request declares
 * (Content-MD5, x-amz-checksum-* as a header or an aws-chunked trailer, a hex x-amz-content-sha256)
 * computed while it streams, made durable before it counts. Memory stays bounded whatever the size.
 * A body that does not match what the client declared is refused (400 BadDigest and friends) and
 * what was received is discarded.
 */
import type { IncomingMessage } from 'node:http';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AwsChunkedDecoder } from './chunked';
import { createDigest, isChecksumAlgorithm, type ChecksumAlgorithm, type Digest } from './checksums';
import { S3Error, invalidArgument } from './errors';
import { header } from './http';
import type { Sink } from './sinks';

export interface ReceivedBody<T> {
  /** Where the bytes are (what the sink finished with). */
  bytes: T;
  size: number;
  /** Hex MD5 of the body: the ETag of a single-part object. */
  md5: string;
  /** Checksums the client declared and that matched, by algorithm (base64). */
  checksums: Partial<Record<ChecksumAlgorithm, string>>;
}

const NAMES: Record<ChecksumAlgorithm, string> = { crc32: 'CRC32', crc32c: 'CRC32C', crc64nvme: 'CRC64NVME', sha1: 'SHA1', sha256: 'SHA256' };

/** The checksum algorithm a request declares, from a header or the x-amz-trailer announcement. */
function declaredChecksum(req: IncomingMessage): { algorithm: ChecksumAlgorithm; value?: string; inTrailer: boolean } | undefined {
  for (const [name, value] of Object.entries(req.headers)) {
    const m = /^x-amz-checksum-([a-z0-9]+)$/.exec(name);
    if (m && m[1] !== 'type' && m[1] !== 'algorithm') {
      if (!isChecksumAlgorithm(m[1]!)) throw invalidArgument(`unknown checksum algorithm ${m[1]}`);
      return { algorithm: m[1], value: String(value), inTrailer: false };
    }
  }
  const trailer = header(req, 'x-amz-trailer')?.trim().toLowerCase();
  const m = trailer ? /^x-amz-checksum-([a-z0-9]+)$/.exec(trailer) : null;
  if (m) {
    if (!isChecksumAlgorithm(m[1]!)) throw invalidArgument(`unknown checksum algorithm ${m[1]}`);
    return { algorithm: m[1], inTrailer: true };
  }
  return undefined;
}

/**
 * Whether the body is aws-chunked framed: the SDKs say so with a STREAMING-* payload hash (and
 * x-amz-decoded-content-length). Content-Encoding alone does not decide it: a client may set
 * `aws-chunked` there as a stored header on a plain body.
 */
export function isAwsChunked(req: IncomingMessage): boolean {
  if ((header(req, 'x-amz-content-sha256') ?? '').startsWith('STREAMING-')) return true;
  return (
    header(req, 'x-amz-decoded-content-length') !== undefined && (header(req, 'content-encoding') ?? '').split(',').some((e) => e.trim() === 'aws-chunked')
  );
}

/** Writes `req`'s payload into `sink` and verifies it; discards what the sink received on any failure. */
export async function receiveBody<T>(req: IncomingMessage, sink: Sink<T>, maxBytes: number): Promise<ReceivedBody<T>> {
  const contentMd5 = header(req, 'content-md5');
  if (contentMd5 !== undefined && Buffer.from(contentMd5, 'base64').length !== 16)
    throw new S3Error(400, 'InvalidDigest', 'The Content-MD5 you specified was invalid.');
  const checksum = declaredChecksum(req);
  const sha256Header = header(req, 'x-amz-content-sha256');
  const payloadSha256 = sha256Header && /^[0-9a-f]{64}$/i.test(sha256Header) ? sha256Header.toLowerCase() : undefined;

  const md5 = createDigest('md5');
  const digests: Array<[string, Digest]> = [];
  const checksumDigest = checksum ? createDigest(checksum.algorithm) : undefined;
  const sha256 = payloadSha256 && checksum?.algorithm !== 'sha256' ? createDigest('sha256') : undefined;
  if (checksumDigest) digests.push(['checksum', checksumDigest]);
  if (sha256) digests.push(['sha256', sha256]);

  let size = 0;
  try {
    const writer = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        size += chunk.length;
        if (size > maxBytes) {
          callback(new S3Error(400, 'EntityTooLarge', `Your proposed upload exceeds the maximum allowed size of ${maxBytes} bytes`));
          return;
        }
        md5.update(chunk);
        for (const [, d] of digests) d.update(chunk);
        sink.write(chunk).then(() => callback(), callback);
      },
    });
    const decoder = isAwsChunked(req) ? new AwsChunkedDecoder() : undefined;
    const stages: Array<Readable | Writable> = decoder ? [req, decoder, writer] : [req, writer];
    await pipeline(stages as unknown as [Readable, Writable]);

    const declaredLength = header(req, 'x-amz-decoded-content-length');
    if (decoder && declaredLength !== undefined && Number(declaredLength) !== size) {
      throw new S3Error(
        400,
        'IncompleteBody',
        `You did not provide the number of bytes specified by the x-amz-decoded-content-length header (${declaredLength}; got ${size}).`,
      );
    }
    const md5Hex = Buffer.from(md5.digest(), 'base64').toString('hex');
    if (contentMd5 !== undefined && Buffer.from(contentMd5, 'base64').toString('hex') !== md5Hex) {
      throw new S3Error(400, 'BadDigest', 'The Content-MD5 you specified did not match what we received.');
    }
    const checksums: ReceivedBody<T>['checksums'] = {};
    if (checksum && checksumDigest) {
      const expected = checksum.inTrailer ? decoder?.trailers[`x-amz-checksum-${checksum.algorithm}`] : checksum.value;
      if (expected === undefined)
        throw new S3Error(400, 'InvalidRequest', `x-amz-trailer announced x-amz-checksum-${checksum.algorithm} but the body did not carry it`);
      const actual = checksumDigest.digest();
      if (expected !== actual) throw new S3Error(400, 'BadDigest', `The ${NAMES[checksum.algorithm]} you specified did not match the calculated checksum.`);
      checksums[checksum.algorithm] = actual;
      if (checksum.algorithm === 'sha256' && payloadSha256 && Buffer.from(actual, 'base64').toString('hex') !== payloadSha256) throw sha256Mismatch();
    }
    if (sha256 && payloadSha256 && Buffer.from(sha256.digest(), 'base64').toString('hex') !== payloadSha256) throw sha256Mismatch();
    return { bytes: await sink.finish(), size, md5: md5Hex, checksums };
  } catch (err) {
    await sink.discard();
    throw err;
  }
}

const sha256Mismatch = () => new S3Error(400, 'XAmzContentSHA256Mismatch', 'The provided x-amz-content-sha256 header does not match what was computed.');

/** Reads a small request body (XML documents) into memory, refusing more than `maxBytes`. */
export async function readSmallBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const decoder = isAwsChunked(req) ? new AwsChunkedDecoder() : undefined;
  const source: AsyncIterable<Buffer> = decoder ? req.pipe(decoder) : req;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of source) {
    size += chunk.length;
    if (size > maxBytes) throw new S3Error(400, 'MaxMessageLengthExceeded', `Your request was too big (over ${maxBytes} bytes).`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

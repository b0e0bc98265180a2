/** Request and response helpers of the embedded S3 server's HTTP layer. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { S3Error, invalidArgument } from './errors';
import { STORED_HEADERS, type ObjectAttributes } from './storage';
import { xmlDocument, xmlEscape } from './xml';

export function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return typeof v === 'string' ? v : Array.isArray(v) ? v.join(', ') : undefined;
}

export function sendXml(res: ServerResponse, status: number, root: string, content: Record<string, unknown>, headers: Record<string, string> = {}): void {
  const bytes = Buffer.from(xmlDocument(root, content), 'utf8');
  res.writeHead(status, { ...headers, 'content-type': 'application/xml', 'content-length': bytes.length }).end(bytes);
}

export function sendError(req: IncomingMessage, res: ServerResponse, error: S3Error, requestId: string): void {
  const resource = (req.url ?? '/').split('?')[0]!;
  if (req.method === 'HEAD') {
    res.writeHead(error.status, { ...error.headers, 'x-amz-error-code': error.code }).end();
    return;
  }
  const bytes = Buffer.from(
    `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${xmlEscape(error.code)}</Code><Message>${xmlEscape(error.message)}</Message><Resource>${xmlEscape(resource)}</Resource><RequestId>${requestId}</RequestId></Error>`,
    'utf8',
  );
  res.writeHead(error.status, { ...error.headers, 'content-type': 'application/xml', 'content-length': bytes.length }).end(bytes);
}

/** Reads and discards a request body. */
export async function drain(req: IncomingMessage): Promise<void> {
  for await (const _chunk of req) {
    // discarded
  }
}

/**
 * A header value as text. Node hands header bytes over as Latin-1; bytes that form valid UTF-8
 * (what botocore and the AWS CLI send for non-ASCII metadata) are read as UTF-8.
 */
export function headerText(latin1: string): string {
  if (/^[\p{ASCII}]*$/u.test(latin1)) return latin1;
  const bytes = Buffer.from(latin1, 'latin1');
  const text = bytes.toString('utf8');
  return Buffer.from(text, 'utf8').equals(bytes) ? text : latin1;
}

/**
 * Text for a response header: as Latin-1 bytes when every character fits (what HTTP clients
 * decode header bytes as), otherwise as its UTF-8 bytes.
 */
export function headerBytes(text: string): string {
  return [...text].some((c) => c.codePointAt(0)! > 0xff) ? Buffer.from(text, 'utf8').toString('latin1') : text;
}

/**
 * The object attributes a PUT, copy or multipart creation carries: content type, user metadata
 * (as text, see headerText), the standard headers S3
 * stores (aws-chunked removed from Content-Encoding).
 */
export function attributesOf(req: IncomingMessage): ObjectAttributes {
  const userMetadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers))
    if (k.startsWith('x-amz-meta-') && typeof v === 'string') userMetadata[k.slice('x-amz-meta-'.length)] = headerText(v);
  const headers: NonNullable<ObjectAttributes['headers']> = {};
  for (const name of STORED_HEADERS) {
    let value = header(req, name);
    if (name === 'content-encoding' && value !== undefined) {
      value = value
        .split(',')
        .map((e) => e.trim())
        .filter((e) => e && e !== 'aws-chunked')
        .join(', ');
    }
    if (value) headers[name] = value;
  }
  return { contentType: header(req, 'content-type') ?? 'binary/octet-stream', userMetadata, ...(Object.keys(headers).length > 0 ? { headers } : {}) };
}

/** A non-negative integer query parameter with a default and a ceiling; 400 InvalidArgument when malformed. */
export function intParam(q: URLSearchParams, name: string, fallback: number, max: number): number {
  const raw = q.get(name);
  if (raw === null || raw === '') return fallback;
  if (!/^\d+$/.test(raw)) throw invalidArgument(`Provided ${name} not an integer or within integer range`);
  return Math.min(max, Number(raw));
}

export function httpDate(iso: string): string {
  return new Date(iso).toUTCString();
}

/** S3 times in listings: ISO 8601 with milliseconds. */
export const isoTime = (iso: string) => new Date(iso).toISOString();

export { S3Error };

/** The HTTP edge: API Gateway proxy events in, JSON responses out, one error mapper. */
import type { Logger } from '@aws-lambda-powertools/logger';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { ZodError } from 'zod';
import { AWS_LIMITS } from '../../shared/aws-limits';
import { BadRequestError, ClientError, PayloadTooLargeError } from '../../shared/errors';

/** Any request body: API Gateway's REST payload limit, applied by the embedded stack too. */
export const MAX_BODY_BYTES = AWS_LIMITS.apiGateway.maxPayloadBytes;

/**
 * The image of `POST /search`, in both deployments. In AWS the body reaches Lambda base64-encoded
 * inside the event (4/3 of its size), and a synchronous invocation carries at most 6 MB: 4 MiB of
 * image is 5.33 MiB of base64, leaving over 600 KiB for headers and the event's envelope. Larger
 * images are refused with 413 by the function up to what Lambda accepts; beyond that API Gateway
 * itself answers 500 (the invocation is refused before the function runs), which is why the CLI
 * checks the size before sending.
 */
export const SEARCH_MAX_IMAGE_BYTES = 4 * 1024 * 1024;

export function json(statusCode: number, body: unknown): APIGatewayProxyResult {
  return { statusCode, headers: { 'content-type': 'application/json; charset=utf-8' }, body: JSON.stringify(body) };
}

export function errorResponse(err: unknown, logger: Logger): APIGatewayProxyResult {
  if (err instanceof ClientError) return json(err.status, { error: { code: err.code, message: err.message } });
  if (err instanceof ZodError) {
    const message = err.issues.map((i) => (i.path.length > 0 ? `${i.path.join('.')}: ${i.message}` : i.message)).join('; ');
    return json(400, { error: { code: 'bad_request', message } });
  }
  logger.error('unhandled error', err as Error);
  return json(500, { error: { code: 'internal', message: 'internal error' } });
}

export function header(event: APIGatewayProxyEvent, name: string): string | undefined {
  const wanted = name.toLowerCase();
  for (const [k, v] of Object.entries(event.headers ?? {})) if (k.toLowerCase() === wanted && v !== undefined) return v;
  return undefined;
}

export function bodyBytes(event: APIGatewayProxyEvent): Buffer {
  if (event.body === null || event.body === undefined) return Buffer.alloc(0);
  const bytes = event.isBase64Encoded ? Buffer.from(event.body, 'base64') : Buffer.from(event.body, 'utf8');
  if (bytes.length > MAX_BODY_BYTES) throw new PayloadTooLargeError(`request body is ${bytes.length} bytes; the limit is ${MAX_BODY_BYTES}`);
  return bytes;
}

export function jsonBody(event: APIGatewayProxyEvent, { optional = false } = {}): unknown {
  const bytes = bodyBytes(event);
  if (bytes.length === 0) {
    if (optional) return undefined;
    throw new BadRequestError('a JSON body is required');
  }
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new BadRequestError('the body is not valid JSON');
  }
}

/** The route path: the resource for explicit API Gateway resources, the path behind a proxy resource. */
export function routePath(event: APIGatewayProxyEvent): string {
  const resource = event.resource && !event.resource.includes('{') ? event.resource : event.path;
  return resource.length > 1 ? resource.replace(/\/+$/, '') : resource;
}

/**
 * The CLI's HTTP client for the pipeline API: JSON (or image bytes) in, JSON out, the API's error
 * shape read back. Against a deployed API every request is signed with SigV4 (`signer`).
 */
import type { ApiSigner } from './sigv4';

export interface ApiReply {
  status: number;
  json: unknown;
}

export interface ApiClient {
  readonly url: string;
  /** A JSON body, or raw bytes with their content type. */
  call(method: string, path: string, body?: unknown | { bytes: Buffer; contentType: string }): Promise<ApiReply>;
}

function isRaw(body: unknown): body is { bytes: Buffer; contentType: string } {
  return typeof body === 'object' && body !== null && Buffer.isBuffer((body as { bytes?: unknown }).bytes);
}

export function apiClient(url: string, signer?: ApiSigner): ApiClient {
  const base = url.replace(/\/$/, '');
  return {
    url: base,
    async call(method, path, body) {
      const raw = isRaw(body) ? body : undefined;
      const payload = raw ? raw.bytes : body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      let headers: Record<string, string> = payload === undefined ? {} : { 'content-type': raw ? raw.contentType : 'application/json' };
      const target = new URL(`${base}${path}`);
      if (signer) {
        try {
          headers = await signer.sign({ method, url: target, headers, body: payload });
        } catch (err) {
          throw new Error(`cannot sign the request with your AWS credentials: ${(err as Error).message}`);
        }
      }
      let res: Response;
      try {
        res = await fetch(target, { method, headers, body: payload });
      } catch (err) {
        const cause = (err as { cause?: { code?: string } }).cause?.code;
        throw new Error(
          `cannot reach the API at ${base}${cause ? ` (${cause})` : ''}: ${signer ? 'is --endpoint the deployed API URL (…/v1)?' : 'is the stack running (npm start), or is --api right?'}`,
        );
      }
      const text = await res.text();
      let json: unknown = text;
      try {
        json = text ? JSON.parse(text) : null;
      } catch {
        // not JSON: keep the text
      }
      return { status: res.status, json };
    },
  };
}

/** The API's `{"error": {"code", "message"}}`, or the status when the body is something else. */
export function errorMessage(reply: ApiReply): string {
  const body = reply.json as { error?: { code?: string; message?: string }; message?: string } | null;
  const error = body?.error;
  if (error?.message) return `${error.message}${error.code ? ` (${error.code})` : ''}`;
  // API Gateway's own answers ({"message": ...}): authorisation, throttling, payload limits.
  if (typeof body?.message === 'string')
    return `HTTP ${reply.status} from API Gateway: ${body.message}${reply.status === 403 ? ' (check your AWS credentials and execute-api:Invoke permission)' : ''}`;
  return `HTTP ${reply.status}`;
}

/** The CLI's HTTP client for the pipeline API: JSON in and out, the API's error shape read back. */

export interface ApiReply {
  status: number;
  json: unknown;
}

export interface ApiClient {
  readonly url: string;
  call(method: string, path: string, body?: unknown): Promise<ApiReply>;
}

export function apiClient(url: string): ApiClient {
  const base = url.replace(/\/$/, '');
  return {
    url: base,
    async call(method, path, body) {
      let res: Response;
      try {
        res = await fetch(`${base}${path}`, {
          method,
          headers: body === undefined ? {} : { 'content-type': 'application/json' },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
      } catch (err) {
        const cause = (err as { cause?: { code?: string } }).cause?.code;
        throw new Error(`cannot reach the API at ${base}${cause ? ` (${cause})` : ''}: is the stack running (npm start), or is --api right?`);
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
  const error = (reply.json as { error?: { code?: string; message?: string } } | null)?.error;
  return error?.message ? `${error.message}${error.code ? ` (${error.code})` : ''}` : `HTTP ${reply.status}`;
}

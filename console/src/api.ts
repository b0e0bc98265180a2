/**
 * The console's client of the HTTP API (same origin: the embedded stack, or the signing proxy of
 * `npm run pipeline -- console`). Response types come from the use cases that produce them.
 */
import type { ImageList } from '../../shared/use-cases/catalog';
import type { LabelQueue } from '../../shared/use-cases/label-queue';
import type { NeighborsResult } from '../../shared/use-cases/query';
import type { Health, ImageStatus, ModelsView } from '../../shared/use-cases/status';
import type { ModelReport } from '../../shared/schemas';

export type { Health, ImageList, ImageStatus, LabelQueue, ModelReport, ModelsView, NeighborsResult };
export type { ImageListItem } from '../../shared/use-cases/catalog';

/** POST /search's limit (functions/api/http.ts SEARCH_MAX_IMAGE_BYTES), checked before sending. */
export const SEARCH_MAX_IMAGE_BYTES = 4 * 1024 * 1024;

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export async function api<T>(method: string, path: string, body?: { json: unknown } | { bytes: Blob; contentType: string }): Promise<T> {
  const init: RequestInit = { method, headers: { accept: 'application/json' } };
  if (body && 'json' in body) {
    init.body = JSON.stringify(body.json);
    init.headers = { ...init.headers, 'content-type': 'application/json' };
  } else if (body) {
    init.body = body.bytes;
    init.headers = { ...init.headers, 'content-type': body.contentType };
  }
  let res: Response;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError(0, 'unreachable', 'The API did not answer. Is the stack (or the console proxy) still running?');
  }
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  if (!res.ok) {
    const error = (parsed as { error?: { code?: string; message?: string }; message?: string } | undefined) ?? {};
    throw new ApiError(res.status, error.error?.code ?? 'http', error.error?.message ?? error.message ?? `HTTP ${res.status}`);
  }
  return parsed as T;
}

export function thumbnailUrl(key: string, version?: string): string {
  const q = new URLSearchParams({ key });
  // A re-upload makes a new thumbnail: its upload time in the URL keeps the browser from reusing the old one.
  if (version) q.set('v', version);
  return `/thumbnails?${q}`;
}

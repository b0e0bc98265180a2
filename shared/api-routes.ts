/**
 * The HTTP routes of the user contract, defined once. The API handler must implement exactly
 * these (its route table is typed by `ApiRouteKey`), API Gateway gets one method per entry (with
 * its required query parameters validated at the edge), the embedded stack's banner lists them,
 * and a test holds the README's route table to them.
 */
export interface ApiRouteSpec {
  readonly method: 'GET' | 'POST' | 'PUT';
  /** The path under the API's base URL, with its leading slash. */
  readonly path: string;
  /** Query parameters without which the request is refused (API Gateway checks them first). */
  readonly requiredQuery?: readonly string[];
}

export const API_ROUTES = [
  { method: 'GET', path: '/health' },
  /** With `key`: one image's state; without: the newest images, paged (`prefix`, `state`, `label`, `limit`, `cursor`). */
  { method: 'GET', path: '/images' },
  { method: 'GET', path: '/thumbnails', requiredQuery: ['key'] },
  { method: 'GET', path: '/label-queue' },
  { method: 'GET', path: '/neighbors', requiredQuery: ['key'] },
  { method: 'POST', path: '/search' },
  { method: 'PUT', path: '/labels' },
  { method: 'GET', path: '/models' },
  { method: 'GET', path: '/models/report', requiredQuery: ['version'] },
  { method: 'POST', path: '/models/rollback' },
  { method: 'POST', path: '/models/import' },
  { method: 'POST', path: '/train' },
  { method: 'GET', path: '/dead-letters' },
  { method: 'POST', path: '/dead-letters/redrive' },
] as const satisfies readonly ApiRouteSpec[];

type KeyOf<R> = R extends { method: infer M extends string; path: infer P extends string } ? `${M} ${P}` : never;

/** "GET /health", "POST /search", ...: one per contract route. */
export type ApiRouteKey = KeyOf<(typeof API_ROUTES)[number]>;

export const routeKey = (route: ApiRouteSpec): ApiRouteKey => `${route.method} ${route.path}` as ApiRouteKey;

/**
 * The web console's files (console/): built from TypeScript with esbuild when a server starts, kept
 * in memory, and served at `GET /` (the page) and under `/console/` (script, stylesheet), on the
 * API's origin: the embedded stack's API server and the CLI's signing proxy (`pipeline -- console`).
 * Nothing is fetched from anywhere else.
 */
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { build } from 'esbuild';
import { strongEtag } from '../shared/etag';

/** The prefix of the console's static files; `/` is the page itself. */
export const CONSOLE_PREFIX = '/console/';
const ROOT = join(__dirname, '..', 'console');

interface Asset {
  body: Buffer;
  contentType: string;
  etag: string;
}

export type ConsoleAssets = ReadonlyMap<string, Asset>;

/** Same origin only: the page may load its own script, style and images (thumbnails; blob: previews of a searched file). */
const CSP = "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'";

export async function buildConsoleAssets(): Promise<ConsoleAssets> {
  const result = await build({
    entryPoints: [join(ROOT, 'src', 'main.tsx')],
    bundle: true,
    write: false,
    format: 'esm',
    target: 'es2020',
    minify: true,
    sourcemap: 'linked',
    outfile: 'app.js',
    jsx: 'automatic',
    jsxImportSource: 'preact',
    tsconfig: join(ROOT, 'tsconfig.json'),
    define: { 'process.env.NODE_ENV': '"production"' },
    logLevel: 'silent',
  });
  const assets = new Map<string, Asset>();
  const add = (path: string, body: Buffer, contentType: string) => assets.set(path, { body, contentType, etag: strongEtag(body) });
  for (const file of result.outputFiles) {
    const name = file.path.endsWith('.map') ? 'app.js.map' : 'app.js';
    add(`${CONSOLE_PREFIX}${name}`, Buffer.from(file.contents), name.endsWith('.map') ? 'application/json' : 'text/javascript; charset=utf-8');
  }
  add('/', await readFile(join(ROOT, 'index.html')), 'text/html; charset=utf-8');
  add(`${CONSOLE_PREFIX}app.css`, await readFile(join(ROOT, 'app.css')), 'text/css; charset=utf-8');
  return assets;
}

/** Answers a GET/HEAD of the console's page or files and returns true; false for anything else (the API's routes). */
export function serveConsole(assets: ConsoleAssets, req: IncomingMessage, res: ServerResponse): boolean {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  const path = new URL(req.url ?? '/', 'http://localhost').pathname;
  if (path !== '/' && path !== '/index.html' && !path.startsWith(CONSOLE_PREFIX)) return false;
  const asset = assets.get(path === '/index.html' ? '/' : path);
  const headers = { 'x-content-type-options': 'nosniff', 'cache-control': 'no-cache' };
  if (!asset) {
    const body = JSON.stringify({ error: { code: 'not_found', message: `no console file ${path}` } });
    res.writeHead(404, { ...headers, 'content-type': 'application/json' }).end(body);
    return true;
  }
  const pageHeaders = asset.contentType.startsWith('text/html') ? { 'content-security-policy': CSP, 'referrer-policy': 'no-referrer' } : {};
  if (req.headers['if-none-match'] === asset.etag) {
    res.writeHead(304, { ...headers, ...pageHeaders, etag: asset.etag }).end();
    return true;
  }
  res.writeHead(200, { ...headers, ...pageHeaders, etag: asset.etag, 'content-type': asset.contentType, 'content-length': asset.body.length });
  res.end(req.method === 'HEAD' ? undefined : asset.body);
  return true;
}

/**
 * `npm run pipeline -- console --endpoint <url>`: the web console for a deployed (IAM-authorised)
 * API, served on 127.0.0.1. The console's page and files are served locally; its API calls go to the
 * deployment, each signed with SigV4 from the user's own AWS credentials, so the API never has to
 * be opened to the internet or to a browser.
 *
 * Only this machine's console may use the signature: requests for another Host (DNS rebinding) and
 * requests from other sites (an Origin that is not this one, or Sec-Fetch-Site: cross-site) are
 * refused with 403, and only the contract's routes are forwarded.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MAX_BODY_BYTES } from '../functions/api/http';
import { type ConsoleAssets, serveConsole } from '../local/console-assets';
import { API_ROUTES } from '../shared/api-routes';
import type { ApiSigner } from './sigv4';

export interface ConsoleProxyOptions {
  /** The deployed API's base URL, e.g. https://<id>.execute-api.<region>.amazonaws.com/v1. */
  endpoint: string;
  signer: ApiSigner;
  assets: ConsoleAssets;
  host?: string;
  /** 0 picks a free port. */
  port: number;
  /** One line per forwarded request that failed. */
  log?: (line: string) => void;
}

export interface ConsoleProxy {
  url: string;
  close(): Promise<void>;
}

const ROUTE_PATHS: ReadonlySet<string> = new Set(API_ROUTES.map((r) => r.path));
/** Request headers the API reads; everything else the browser sends (cookies, origin, ...) stays here. */
const FORWARDED_REQUEST = ['content-type', 'accept', 'if-none-match'];
const FORWARDED_RESPONSE = ['content-type', 'etag', 'cache-control'];

export async function startConsoleProxy(options: ConsoleProxyOptions): Promise<ConsoleProxy> {
  const host = options.host ?? '127.0.0.1';
  const base = options.endpoint.replace(/\/+$/, '');
  let origins = new Set<string>();
  const server = createServer((req, res) => {
    const refusal = refuse(req, origins);
    if (refusal) return answer(res, 403, 'forbidden', refusal);
    if (serveConsole(options.assets, req, res)) return;
    void forward(req, res, base, options).catch((err) => {
      options.log?.(`[console] ${req.method} ${req.url}: ${(err as Error).message}`);
      if (!res.headersSent) answer(res, 502, 'bad_gateway', `the deployed API did not answer: ${(err as Error).message}`);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  origins = new Set([`http://127.0.0.1:${port}`, `http://localhost:${port}`]);
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Why a request may not use the user's credentials, or undefined when it may. */
function refuse(req: IncomingMessage, origins: Set<string>): string | undefined {
  const host = req.headers.host ?? '';
  if (![...origins].some((o) => o === `http://${host}`)) return `this console answers only at ${[...origins].join(' or ')}, not Host ${JSON.stringify(host)}`;
  const origin = req.headers.origin;
  if (origin !== undefined && !origins.has(origin)) return `requests from ${origin} are not signed: open the console at ${[...origins][0]}`;
  if (req.headers['sec-fetch-site'] === 'cross-site') return 'cross-site requests are not signed';
  return undefined;
}

async function forward(req: IncomingMessage, res: ServerResponse, base: string, options: ConsoleProxyOptions): Promise<void> {
  const incoming = new URL(req.url ?? '/', 'http://localhost');
  if (!ROUTE_PATHS.has(incoming.pathname)) return answer(res, 404, 'not_found', `no route ${req.method} ${incoming.pathname}`);
  const body = await readBody(req);
  if (body === 'too-large') return answer(res, 413, 'payload_too_large', `request body exceeds ${MAX_BODY_BYTES} bytes`);
  const target = new URL(`${base}${incoming.pathname}${incoming.search}`);
  const headers: Record<string, string> = {};
  for (const name of FORWARDED_REQUEST) {
    const value = req.headers[name];
    if (typeof value === 'string') headers[name] = value;
  }
  // API Gateway returns binary bodies only when the first Accept value is a binary media type.
  if (incoming.pathname === '/thumbnails') headers.accept = 'image/webp';
  const method = req.method ?? 'GET';
  const payload = body.length > 0 ? body : undefined;
  const signed = await options.signer.sign({ method, url: target, headers, body: payload });
  const reply = await fetch(target, { method, headers: signed, body: payload });
  const bytes = Buffer.from(await reply.arrayBuffer());
  const out: Record<string, string | number> = { 'content-length': bytes.length };
  for (const name of FORWARDED_RESPONSE) {
    const value = reply.headers.get(name);
    if (value !== null) out[name] = value;
  }
  res.writeHead(reply.status, out).end(bytes);
}

function readBody(req: IncomingMessage): Promise<Buffer | 'too-large'> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        req.removeAllListeners('data');
        req.resume();
        resolve('too-large');
        return;
      }
      chunks.push(chunk);
    });
    req.once('end', () => resolve(Buffer.concat(chunks)));
    req.once('error', reject);
  });
}

function answer(res: ServerResponse, status: number, code: string, message: string): void {
  const body = JSON.stringify({ error: { code, message } });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
}

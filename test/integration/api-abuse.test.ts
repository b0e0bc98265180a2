/**
 * Every route over real HTTP (the local API adapter in front of the Lambda handler), fed
 * malformed, oversized, out-of-range and unknown input: always a 4xx JSON error, never a 5xx,
 * never a hang, and no CORS headers.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Logger } from '@aws-lambda-powertools/logger';
import { createApiHandler } from '../../functions/api/handler';
import { LocalApiServer } from '../../local/api-server';
import { LocalDeadLetterQueue } from '../../shared/adapters/local-dead-letters';
import { LocalQueue } from '../../shared/adapters/local-queue';
import { augmentImage } from '../../shared/use-cases/augment-image';
import { embedImage } from '../../shared/use-cases/embed-image';
import { solidPng } from '../support/images';
import { fakePipeline, IMAGES } from '../support/pipeline';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function send(port: number, method: string, path: string, body?: Buffer | string, headers: Record<string, string | number> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers, timeout: 5_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within 5 s`)));
    req.on('error', reject);
    req.end(body);
  });
}

const json = { 'content-type': 'application/json' };
const big = (n: number) => Buffer.alloc(n, 0x61);

// [method, path, body, headers, expected status]
type Case = [string, string, (Buffer | string)?, Record<string, string | number>?, number?];
const CASES: Case[] = [
  // unknown routes, wrong methods, traversal-looking paths
  ['GET', '/nope', undefined, undefined, 404],
  ['GET', '/', undefined, undefined, 404],
  ['GET', '/images/../../etc/passwd', undefined, undefined, 404],
  ['GET', '/..%2F..%2Fetc%2Fpasswd', undefined, undefined, 404],
  ['GET', '/health/x', undefined, undefined, 404],
  ['DELETE', '/images?key=a.png', undefined, undefined, 405],
  ['POST', '/health', undefined, undefined, 405],
  ['PUT', '/neighbors?key=a.png', undefined, undefined, 405],
  ['GET', '/search', undefined, undefined, 405],
  ['GET', '/labels', undefined, undefined, 405],
  ['POST', '/models', undefined, undefined, 405],
  ['GET', '/models/rollback', undefined, undefined, 405],
  ['GET', '/train', undefined, undefined, 405],
  ['POST', '/dead-letters', undefined, undefined, 405],
  ['GET', '/dead-letters/redrive', undefined, undefined, 405],
  ['OPTIONS', '/neighbors', undefined, { origin: 'https://evil.example', 'access-control-request-method': 'GET' }, 405],
  // GET /images
  ['GET', '/images?limit=0', undefined, undefined, 400],
  ['GET', '/images?cursor=..%2F..%2Fetc', undefined, undefined, 400],
  ['GET', '/thumbnails', undefined, undefined, 400],
  ['GET', '/thumbnails?key=ghost.png', undefined, undefined, 404],
  ['GET', '/label-queue?limit=-1', undefined, undefined, 400],
  ['GET', '/images?key=', undefined, undefined, 400],
  ['GET', `/images?key=${'k'.repeat(1025)}`, undefined, undefined, 400],
  ['GET', '/images?key=%00%01', undefined, undefined, 404],
  ['GET', '/images?key=%E0%A4%A', undefined, undefined, 404],
  // GET /neighbors
  ['GET', '/neighbors', undefined, undefined, 400],
  ['GET', '/neighbors?key=a.png&k=0', undefined, undefined, 400],
  ['GET', '/neighbors?key=a.png&k=101', undefined, undefined, 400],
  ['GET', '/neighbors?key=a.png&k=-1', undefined, undefined, 400],
  ['GET', '/neighbors?key=a.png&k=1e3', undefined, undefined, 400],
  ['GET', '/neighbors?key=a.png&k=99999999999999999999', undefined, undefined, 400],
  ['GET', '/neighbors?key=a.png&label=', undefined, undefined, 400],
  ['GET', `/neighbors?key=a.png&label=${'x'.repeat(65)}`, undefined, undefined, 400],
  ['GET', '/neighbors?key=ghost.png', undefined, undefined, 404],
  ['GET', '/neighbors?key=../../etc/passwd', undefined, undefined, 404],
  // POST /search
  ['POST', '/search', undefined, { 'content-type': 'image/png' }, 400],
  ['POST', '/search', 'hello', { 'content-type': 'text/plain' }, 415],
  ['POST', '/search', 'hello', undefined, 415],
  ['POST', '/search', Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>'), { 'content-type': 'image/svg+xml' }, 400],
  ['POST', '/search', Buffer.from('GIF89a'), { 'content-type': 'image/gif' }, 400],
  ['POST', '/search', '{"image":"!!!not base64!!!"}', json, 400],
  ['POST', '/search', '{"image":""}', json, 400],
  ['POST', '/search', '{"image":123}', json, 400],
  ['POST', '/search', '{"image":"aGVsbG8=","extra":1}', json, 400],
  ['POST', '/search', '{"image":"aGVsbG8="', json, 400],
  ['POST', '/search?k=0', '{"image":"aGVsbG8="}', json, 400],
  ['POST', '/search', big(10 * 1024 * 1024 + 1), { 'content-type': 'image/png' }, 413],
  ['POST', '/search', undefined, { 'content-type': 'image/png', 'content-length': 50 * 1024 * 1024 }, 413],
  // PUT /labels
  ['PUT', '/labels', undefined, json, 400],
  ['PUT', '/labels', 'null', json, 400],
  ['PUT', '/labels', '[]', json, 400],
  ['PUT', '/labels', '{"labels":[]}', json, 400],
  ['PUT', '/labels', '{"labels":"a.png"}', json, 400],
  ['PUT', '/labels', '{"key":"a.png"}', json, 400],
  ['PUT', '/labels', '{"key":"a.png","label":7}', json, 400],
  ['PUT', '/labels', '{"key":"a.png","label":" padded "}', json, 400],
  ['PUT', '/labels', '{"key":"a.png","label":"ok","__proto__":{"admin":true}}', json, 400],
  ['PUT', '/labels', JSON.stringify({ labels: Array.from({ length: 1001 }, () => ({ key: 'a.png', label: 'x' })) }), json, 400],
  ['PUT', '/labels', `${'['.repeat(5000)}${']'.repeat(5000)}`, json, 400],
  ['PUT', '/labels', '{"key":"ghost.png","label":"x"}', json, 404],
  ['PUT', '/labels', big(10 * 1024 * 1024 + 1), json, 413],
  // POST /train
  ['POST', '/train', '{"maxMinutes":"5"}', json, 400],
  ['POST', '/train', '{"maxMinutes":0}', json, 400],
  ['POST', '/train', '{"maxMinutes":100000}', json, 400],
  ['POST', '/train', '{"maxMinutes":5,"gpu":"all"}', json, 400],
  ['POST', '/train', 'not json', json, 400],
  // POST /models/rollback (no previous version here)
  ['POST', '/models/rollback', undefined, undefined, 409],
  // dead letters
  ['GET', '/dead-letters?limit=0', undefined, undefined, 400],
  ['GET', '/dead-letters?limit=abc', undefined, undefined, 400],
  ['GET', '/dead-letters?limit=101', undefined, undefined, 400],
  ['GET', '/dead-letters?other=1', undefined, undefined, 400],
  ['POST', '/dead-letters/redrive', '{"queue":"../../x"}', json, 400],
  ['POST', '/dead-letters/redrive', '{"queue":"ingest","all":true}', json, 400],
];

describe('API abuse over HTTP', () => {
  let server: LocalApiServer;
  const queues: LocalQueue[] = [];

  beforeAll(async () => {
    const p = await fakePipeline();
    for (const key of ['a.png', 'b.png']) {
      await p.store.put(IMAGES, key, await solidPng(8, 8, [200, 10, 10]));
      await augmentImage(p, { kind: 'created', bucket: IMAGES, key, sequencer: '01' });
    }
    for (const m of p.embedQueue.messages<{ key: string; imageId: string; sequencer: string }>()) await embedImage(p, m);
    const dir = mkdtempSync(join(tmpdir(), 'api-abuse-'));
    const dlq = await LocalQueue.open(dir, 'ingest-dlq', { visibilityTimeoutMs: 1000, maxReceives: 3 });
    const ingest = await LocalQueue.open(dir, 'ingest', { visibilityTimeoutMs: 1000, maxReceives: 3, deadLetterQueue: dlq });
    queues.push(ingest, dlq);
    const handler = createApiHandler(
      { ...p, launcher: { launch: async () => undefined }, deadLetters: [new LocalDeadLetterQueue('ingest', dlq, ingest)] },
      new Logger({ logLevel: 'SILENT' }),
    );
    server = await LocalApiServer.start(handler, '127.0.0.1', 0);
  });
  afterAll(async () => {
    await server.close();
    for (const q of queues) await q.close();
  });

  it.each(CASES.map((c) => [`${c[0]} ${c[1].slice(0, 60)}${c[2] ? ` (${Math.min(c[2].length, 99999)} bytes)` : ''}`, c] as const))(
    '%s',
    async (_name, [method, path, body, headers, expected]) => {
      const reply = await send(server.port, method, path, body, {
        ...(body !== undefined && headers?.['content-length'] === undefined ? { 'content-length': Buffer.byteLength(body) } : {}),
        ...headers,
      });
      expect(reply.status).toBe(expected);
      const parsed = JSON.parse(reply.body) as { error: { code: string; message: string } };
      expect(typeof parsed.error.code).toBe('string');
      expect(parsed.error.message.length).toBeGreaterThan(0);
      expect(Object.keys(reply.headers).filter((h) => h.startsWith('access-control-'))).toEqual([]);
    },
  );

  it('serves valid requests on the same server without CORS headers', async () => {
    // '/%2e%2e/health' is '/health' after URL normalisation: routes are names, never file paths.
    for (const path of ['/health', '/%2e%2e/health', '/images?key=a.png', '/neighbors?key=a.png&k=1', '/models', '/dead-letters']) {
      const reply = await send(server.port, 'GET', path, undefined, { origin: 'https://evil.example' });
      expect({ path, status: reply.status }).toEqual({ path, status: 200 });
      expect(Object.keys(reply.headers).filter((h) => h.startsWith('access-control-'))).toEqual([]);
    }
  });

  it('answers an oversized body with the 413 JSON error to clients that send it all before reading (Python urllib)', async () => {
    const script = [
      'import json, sys, urllib.request, urllib.error',
      'req = urllib.request.Request(sys.argv[1], data=b"\\x89PNG" + b"a" * (12 * 1024 * 1024), method="POST", headers={"Content-Type": "image/png"})',
      'try:',
      '    urllib.request.urlopen(req, timeout=20)',
      '    print("no error")',
      'except urllib.error.HTTPError as e:',
      '    print(e.code, json.loads(e.read())["error"]["code"])',
    ].join('\n');
    const { stdout } = await promisify(execFile)('python3', ['-c', script, `http://127.0.0.1:${server.port}/search?k=3`], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(stdout.trim()).toBe('413 payload_too_large');
  });

  it('a slow or broken client does not take the server down', async () => {
    await new Promise<void>((resolve) => {
      const req = request({ host: '127.0.0.1', port: server.port, method: 'PUT', path: '/labels', headers: { 'content-length': 1000, ...json } });
      req.on('error', () => resolve());
      req.write('{"key":');
      setTimeout(() => {
        req.destroy();
        resolve();
      }, 100);
    });
    expect((await send(server.port, 'GET', '/health')).status).toBe(200);
  });
});

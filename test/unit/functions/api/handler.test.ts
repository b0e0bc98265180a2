import type { APIGatewayProxyEvent } from 'aws-lambda';
import { Logger } from '@aws-lambda-powertools/logger';
import { SEARCH_MAX_IMAGE_BYTES } from '../../../../functions/api/http';
import { AWS_LIMITS } from '../../../../shared/aws-limits';
import { createApiHandler } from '../../../../functions/api/handler';
import { augmentImage } from '../../../../shared/use-cases/augment-image';
import { embedImage } from '../../../../shared/use-cases/embed-image';
import { solidPng } from '../../../support/images';
import { fakePipeline, IMAGES, type FakePipeline } from '../../../support/pipeline';

function event(
  method: string,
  path: string,
  opts: { query?: Record<string, string>; body?: string | Buffer; contentType?: string } = {},
): APIGatewayProxyEvent {
  const binary = Buffer.isBuffer(opts.body);
  return {
    resource: path,
    path,
    httpMethod: method,
    headers: opts.contentType ? { 'Content-Type': opts.contentType } : {},
    multiValueHeaders: {},
    queryStringParameters: opts.query ?? null,
    multiValueQueryStringParameters: null,
    pathParameters: null,
    stageVariables: null,
    requestContext: {} as APIGatewayProxyEvent['requestContext'],
    body: opts.body === undefined ? null : binary ? (opts.body as Buffer).toString('base64') : (opts.body as string),
    isBase64Encoded: binary,
  };
}

describe('api handler', () => {
  let p: FakePipeline;
  let launched: Array<{ jobId: string; maxMinutes?: number }>;
  let api: ReturnType<typeof createApiHandler>;
  const call = async (e: APIGatewayProxyEvent) => {
    const res = await api(e);
    return { status: res.statusCode, body: JSON.parse(res.body) };
  };

  beforeEach(async () => {
    p = await fakePipeline();
    for (const [key, rgb] of [
      ['a.png', [250, 0, 0]],
      ['b.png', [240, 10, 0]],
      ['c.png', [0, 0, 250]],
    ] as const) {
      await p.store.put(IMAGES, key, await solidPng(8, 8, [...rgb]));
      await augmentImage(p, { kind: 'created', bucket: IMAGES, key, sequencer: '1' });
    }
    for (const m of p.embedQueue.messages<{ key: string; imageId: string; sequencer: string }>()) await embedImage(p, m);
    launched = [];
    api = createApiHandler(
      { ...p, launcher: { launch: async (r) => void launched.push(r) }, newJobId: () => 'job-1', deadLetters: [] },
      new Logger({ logLevel: 'SILENT' }),
    );
  });

  it('GET /health', async () => {
    expect(await call(event('GET', '/health'))).toEqual({ status: 200, body: { status: 'ok', servingModel: 'v0', indexed: 3, pending: 3, quarantined: 0 } });
  });

  it('GET /neighbors validates k and key and excludes the query image', async () => {
    const ok = await call(event('GET', '/neighbors', { query: { key: 'a.png', k: '2' } }));
    expect(ok.status).toBe(200);
    expect(ok.body.neighbors.map((n: { key: string }) => n.key)).toEqual(['b.png', 'c.png']);
    for (const k of ['0', '101', '1.5', 'ten']) {
      expect(await call(event('GET', '/neighbors', { query: { key: 'a.png', k } }))).toEqual({
        status: 400,
        body: { error: { code: 'bad_request', message: 'k: k must be an integer from 1 to 100' } },
      });
    }
    expect((await call(event('GET', '/neighbors'))).status).toBe(400);
    expect((await call(event('GET', '/neighbors', { query: { key: 'zzz' } }))).status).toBe(404);
  });

  it('POST /search takes raw image bytes or base64 JSON', async () => {
    const png = await solidPng(8, 8, [0, 0, 250]);
    const raw = await call(event('POST', '/search', { query: { k: '1' }, body: png, contentType: 'image/png' }));
    expect(raw.body.neighbors[0].key).toBe('c.png');
    const viaJson = await call(event('POST', '/search', { body: JSON.stringify({ image: png.toString('base64') }), contentType: 'application/json' }));
    expect(viaJson.body.neighbors[0].key).toBe('c.png');
    expect((await call(event('POST', '/search', { body: 'x', contentType: 'text/plain' }))).status).toBe(415);
    expect((await call(event('POST', '/search', { body: Buffer.from('junk'), contentType: 'image/png' }))).status).toBe(400);
  });

  it('PUT /labels accepts a batch or a single object and validates labels', async () => {
    expect(await call(event('PUT', '/labels', { body: JSON.stringify({ labels: [{ key: 'a.png', label: 'red' }] }) }))).toEqual({
      status: 200,
      body: { updated: 1 },
    });
    expect(await call(event('PUT', '/labels', { body: JSON.stringify({ key: 'b.png', label: 'red' }) }))).toEqual({ status: 200, body: { updated: 1 } });
    expect((await call(event('PUT', '/labels', { body: JSON.stringify({ key: 'b.png', label: 'bad\u0007' }) }))).status).toBe(400);
    expect((await call(event('PUT', '/labels', { body: JSON.stringify({ key: 'b.png', label: 'x'.repeat(65) }) }))).status).toBe(400);
    expect((await call(event('PUT', '/labels', { body: '{oops' }))).body.error.code).toBe('bad_request');
    expect((await call(event('PUT', '/labels', { body: JSON.stringify({ key: 'ghost.png', label: 'x' }) }))).status).toBe(404);
  });

  it('GET /images and GET /models', async () => {
    expect((await call(event('GET', '/images', { query: { key: 'a.png' } }))).body).toEqual({ key: 'a.png', state: 'indexed', modelVersion: 'v0' });
    expect((await call(event('GET', '/models'))).body.serving.version).toBe('v0');
  });

  it('GET /images without a key lists the newest images a page at a time, and validates its query', async () => {
    const page = await call(event('GET', '/images', { query: { limit: '2' } }));
    expect(page.status).toBe(200);
    expect(page.body.items.map((i: { key: string }) => i.key)).toHaveLength(2);
    const rest = await call(event('GET', '/images', { query: { limit: '2', cursor: page.body.cursor } }));
    expect([...page.body.items, ...rest.body.items].map((i: { key: string }) => i.key).sort()).toEqual(['a.png', 'b.png', 'c.png']);
    expect(rest.body.cursor).toBeUndefined();
    expect((await call(event('GET', '/images', { query: { state: 'indexed', label: 'none' } }))).body).toEqual({ items: [] });
    const bad: Array<Record<string, string>> = [{ limit: '0' }, { limit: '101' }, { state: 'done' }, { cursor: 'zz' }, { colour: 'red' }];
    for (const query of bad) {
      expect((await call(event('GET', '/images', { query }))).status).toBe(400);
    }
  });

  it('GET /thumbnails answers the WebP with an ETag and Cache-Control, 304 when the browser has it, 404 for an unknown key', async () => {
    const res = await api(event('GET', '/thumbnails', { query: { key: 'a.png' } }));
    expect(res).toMatchObject({ statusCode: 200, isBase64Encoded: true, headers: { 'content-type': 'image/webp', 'cache-control': 'private, max-age=300' } });
    const etag = (res.headers as Record<string, string>).etag!;
    expect(Buffer.from(res.body, 'base64').subarray(8, 12).toString('latin1')).toBe('WEBP');
    const again = event('GET', '/thumbnails', { query: { key: 'a.png' } });
    again.headers = { 'If-None-Match': etag };
    expect(await api(again)).toMatchObject({ statusCode: 304, body: '' });
    expect((await call(event('GET', '/thumbnails', { query: { key: 'ghost.png' } }))).status).toBe(404);
    expect((await call(event('GET', '/thumbnails'))).status).toBe(400);
  });

  it('GET /label-queue lists unlabelled images and the label trigger', async () => {
    await call(event('PUT', '/labels', { body: JSON.stringify({ key: 'a.png', label: 'red' }) }));
    const queue = await call(event('GET', '/label-queue', { query: { limit: '5' } }));
    expect(queue.status).toBe(200);
    expect(queue.body.items.map((i: { key: string }) => i.key).sort()).toEqual(['b.png', 'c.png']);
    expect(queue.body.retrain).toEqual({ minNewLabels: 0, labelsSinceLastRun: 0, remaining: null });
    expect((await call(event('GET', '/label-queue', { query: { limit: 'all' } }))).status).toBe(400);
  });

  it('POST /train starts a run (202 with the job id) and refuses a second one while it runs (409)', async () => {
    expect((await call(event('POST', '/train', { body: JSON.stringify({ maxMinutes: -1 }) }))).status).toBe(400);
    expect(await call(event('POST', '/train', { body: JSON.stringify({ maxMinutes: 3 }) }))).toEqual({ status: 202, body: { jobId: 'job-1' } });
    expect(launched).toEqual([{ jobId: 'job-1', maxMinutes: 3 }]);
    const again = await call(event('POST', '/train'));
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('training_in_progress');
  });

  it('POST /models/rollback answers 409 when there is no previous version', async () => {
    expect((await call(event('POST', '/models/rollback'))).body.error.code).toBe('no_previous_version');
  });

  it('answers unknown routes with 404, wrong methods with 405, and oversized bodies with 413', async () => {
    expect((await call(event('GET', '/nope'))).status).toBe(404);
    expect(await call(event('POST', '/health'))).toEqual({
      status: 405,
      body: { error: { code: 'method_not_allowed', message: 'POST is not allowed on /health; use GET' } },
    });
    const big = Buffer.alloc(10 * 1024 * 1024 + 1);
    expect((await call(event('POST', '/search', { body: big, contentType: 'image/png' }))).status).toBe(413);
  });

  it('POST /search takes images up to 4 MiB, a size whose base64 event fits Lambda\u2019s 6 MB invocation payload', async () => {
    expect(SEARCH_MAX_IMAGE_BYTES).toBe(4 * 1024 * 1024);
    // The event API Gateway builds: the body base64-encoded, plus headers and the request context.
    expect(Math.ceil(SEARCH_MAX_IMAGE_BYTES / 3) * 4 + 64 * 1024).toBeLessThan(AWS_LIMITS.lambda.syncPayloadBytes);
    const over = await call(event('POST', '/search', { body: Buffer.alloc(SEARCH_MAX_IMAGE_BYTES + 1), contentType: 'image/jpeg' }));
    expect(over.status).toBe(413);
    expect(over.body.error.message).toMatch(/at most 4194304 bytes \(4 MiB\)/);
    const asJson = await call(
      event('POST', '/search', {
        body: JSON.stringify({ image: Buffer.alloc(SEARCH_MAX_IMAGE_BYTES + 1).toString('base64') }),
        contentType: 'application/json',
      }),
    );
    expect(asJson.status).toBe(413);
    // At the limit the image is decoded (and, being zeros, refused as not an image: 422, not 413).
    expect((await call(event('POST', '/search', { body: Buffer.alloc(SEARCH_MAX_IMAGE_BYTES), contentType: 'image/jpeg' }))).status).not.toBe(413);
  });
});

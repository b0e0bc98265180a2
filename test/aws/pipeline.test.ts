/**
 * The AWS deployment, end to end, with AWS's semantics: the bundled functions with their template
 * environments and roles, Lambda's SQS pollers and API Gateway as the template configures them,
 * moto for S3, SQS and S3 Vectors, IAM evaluated on every call (test/support/aws/).
 *
 * Stand-ins, where moto lacks the operation: S3 Vectors QueryVectors (exact search over the
 * index's vectors listed from moto), SQS StartMessageMoveTask (moves the DLQ back to its source),
 * ECS RunTask (runs the trainer's command locally under the task role). Queue visibility
 * timeouts are the template's divided by 120, so retries take seconds.
 */
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { main } from '../../cli/pipeline';
import { startConsoleProxy } from '../../cli/console-proxy';
import { ApiSigner } from '../../cli/sigv4';
import { buildConsoleAssets } from '../../local/console-assets';
import { API_USER, AwsHarness } from '../support/aws/harness';
import { SCHEDULED_TRAINING_EVENT } from '../../shared/schedule-events';
import { gradientImage, solidPng } from '../support/images';
import { imageIdForKey } from '../../shared/ids';
import { encodeNpyU8 } from '../../shared/image/npy';

jest.setTimeout(600_000);

let h: AwsHarness;
const palette: Array<[number, number, number]> = [
  [220, 30, 30],
  [30, 200, 40],
  [20, 40, 210],
  [230, 220, 30],
  [200, 30, 200],
  [30, 210, 210],
];

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\nIAM:\n${h.violationReport()}\n${h.logs()}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

const put = async (key: string, body: Buffer) =>
  h.admin.s3.send(new PutObjectCommand({ Bucket: h.imagesBucket, Key: key, Body: body, ContentType: 'image/png' }));
const imageState = async (key: string) =>
  (await h.request('GET', `/images?key=${encodeURIComponent(key)}`)).body as { state?: string; label?: string; error?: unknown };
const indexed = (key: string) => until(`${key} indexed`, async () => ((await imageState(key)).state === 'indexed' ? true : undefined));

beforeAll(async () => {
  h = await AwsHarness.start();
});
afterAll(async () => {
  await h?.stop();
});
afterEach(() => {
  // Every call any function, poller or task made was allowed by its role (and no read of a missing key lacked s3:ListBucket).
  expect(h.violationReport()).toBe('');
});

describe('the AWS deployment, run with AWS semantics', () => {
  it('starts one trainer init while no model exists, then creates the serving index', async () => {
    const first = (await h.lifecycleTick()) as { initialising?: boolean };
    expect(first.initialising).toBe(true);
    // A second tick while the init task runs must not start another GPU task.
    await h.lifecycleTick();
    expect(h.tasks).toHaveLength(1);
    expect(await h.waitForTasks()).toEqual([0]);
    const ready = (await h.lifecycleTick()) as { initialising?: boolean };
    expect(ready.initialising).toBeUndefined();
    const health = await h.request('GET', '/health');
    expect(health.status).toBe(200);
  });

  it('indexes uploads and answers neighbours, search, labels', async () => {
    const keys = palette.map((_, i) => `photos/img ${i}.png`);
    for (const [i, key] of keys.entries()) await put(key, await solidPng(40 + i, 30, palette[i]!));
    for (const key of keys) await indexed(key);

    const near = await h.request('GET', `/neighbors?key=${encodeURIComponent(keys[0]!)}&k=3`);
    expect(near.status).toBe(200);
    const neighbors = (near.body as { neighbors: Array<{ key: string }> }).neighbors;
    expect(neighbors).toHaveLength(3);
    expect(neighbors.map((n) => n.key)).not.toContain(keys[0]);

    const all = await h.request('GET', `/neighbors?key=${encodeURIComponent(keys[0]!)}&k=100`);
    expect(all.status).toBe(200);
    expect((all.body as { neighbors: unknown[] }).neighbors).toHaveLength(keys.length - 1);

    const search = await h.request('POST', '/search?k=2', { body: await gradientImage(50, 50), contentType: 'image/png' });
    expect(search.status).toBe(200);
    expect((search.body as { neighbors: unknown[] }).neighbors).toHaveLength(2);

    const unknown = await h.request('GET', '/images?key=never/uploaded.png');
    expect(unknown.status).toBe(404);
    const missingNeighbors = await h.request('GET', '/neighbors?key=never/uploaded.png');
    expect(missingNeighbors.status).toBe(404);

    const label = await h.request('PUT', '/labels', { body: JSON.stringify({ key: keys[1], label: 'green' }), contentType: 'application/json' });
    expect(label.status).toBe(200);
    await until('label visible', async () => ((await imageState(keys[1]!)).label === 'green' ? true : undefined));
    const filtered = await h.request('GET', `/neighbors?key=${encodeURIComponent(keys[0]!)}&k=5&label=green`);
    expect(filtered.status).toBe(200);
    expect((filtered.body as { neighbors: Array<{ key: string }> }).neighbors.map((n) => n.key)).toEqual([keys[1]]);

    expect((await h.request('GET', '/models')).status).toBe(200);
    expect((await h.request('GET', '/dead-letters')).status).toBe(200);
  });

  it('answers /health from stored counters, without listing the index or the bucket', async () => {
    await put('photos/not-an-image.png', Buffer.from('this is not a PNG'));
    await until('quarantined', async () => ((await imageState('photos/not-an-image.png')).state === 'quarantined' ? true : undefined));
    const before = h.gateway.calls.length;
    const health = await h.request('GET', '/health');
    const calls = h.gateway.calls.slice(before).filter((c) => c.role.startsWith('Api'));
    expect(health.body).toMatchObject({ status: 'ok', servingModel: 'v0', indexed: palette.length, quarantined: 1 });
    expect(calls.map((c) => c.operation)).not.toEqual(expect.arrayContaining(['ListVectors']));
    expect(calls.filter((c) => c.operation === 'ListObjectsV2')).toEqual([]);
    expect(calls.length).toBeLessThanOrEqual(2 * 8 + 6);
    // The dashboard's index size comes from the lifecycle tick, from the same counter.
    expect(((await h.lifecycleTick()) as { indexSize?: number }).indexSize).toBe(palette.length);
  });

  it('runs scheduled training through the lease: a second schedule while a run holds it is skipped', async () => {
    const first = (await h.functions.lifecycle.invoke(SCHEDULED_TRAINING_EVENT)).result as { training: { started?: string } };
    expect(first.training.started).toMatch(/^train-/);
    const second = (await h.functions.lifecycle.invoke(SCHEDULED_TRAINING_EVENT)).result as { training: { skipped?: string } };
    expect(second.training.skipped).toMatch(/in progress/);
    const runs = h.tasks.filter((t) => t.command[0] === 'run');
    expect(runs).toHaveLength(1);
    expect(runs[0]!.command).toEqual(['run', '--job-id', first.training.started, '--max-minutes', '60']);
    // POST /train answers 409 while the scheduled run holds the lease.
    expect((await h.request('POST', '/train')).status).toBe(409);
  });

  describe('the CLI against the deployed API (SigV4 from the default credential chain)', () => {
    const saved = { ...process.env };
    let out: string[];
    let err: string[];
    const cli = async (...args: string[]) => {
      out = [];
      err = [];
      const log = jest.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
      const error = jest.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.join(' ')));
      const write = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
      try {
        return await main(args);
      } finally {
        log.mockRestore();
        error.mockRestore();
        write.mockRestore();
      }
    };
    beforeEach(() => {
      for (const k of ['AWS_PROFILE', 'AWS_SESSION_TOKEN', 'PIPELINE_API', 'PIPELINE_ENDPOINT']) delete process.env[k];
      Object.assign(process.env, { AWS_ACCESS_KEY_ID: API_USER.accessKeyId, AWS_SECRET_ACCESS_KEY: API_USER.secretAccessKey, AWS_REGION: 'us-east-1' });
    });
    afterAll(() => {
      process.env = saved;
    });

    it('signs requests the API verifies, and reports a refused signature', async () => {
      expect(await cli('--endpoint', h.api.url, 'health', '--json')).toBe(0);
      expect(JSON.parse(out.join('\n'))).toMatchObject({ status: 'ok', servingModel: 'v0' });
      process.env.AWS_SECRET_ACCESS_KEY = 'not-the-secret';
      expect(await cli('--endpoint', h.api.url, 'health')).toBe(1);
      expect(err.join('\n')).toMatch(/HTTP 403 from API Gateway: The request signature we calculated does not match/);
      expect(await cli('--endpoint', h.api.url, '--api', 'http://127.0.0.1:1', 'health')).toBe(2);
    });

    it('imports an encoder: uploaded to the artifacts bucket, validated by the api function under its role, started as an ECS import task', async () => {
      h.gateway.trustUser(API_USER.accessKeyId);
      // The scheduled run above was recorded, not run: its lease ends as if the task had finished.
      await h.admin.s3.send(new DeleteObjectCommand({ Bucket: h.artifactsBucket, Key: 'locks/training.json' }));
      const dir = mkdtempSync(join(tmpdir(), 'cli-import-'));
      const onnx = join(dir, 'detail.onnx');
      const made = spawnSync(join(__dirname, '../../.venv/bin/python'), ['scripts/make-encoder.py', 'detail', '--size', '64', '--out', onnx], {
        cwd: join(__dirname, '../..'),
      });
      expect(made.status).toBe(0);
      const common = ['--endpoint', h.api.url, 'models', 'import', '--bucket', h.artifactsBucket, '--s3-endpoint', h.gateway.endpoint, '--no-wait'];
      // Refused at once, before any task: a model larger than the working resolution, and a file that is not ONNX.
      expect(await cli(...common, onnx, '--input-size', '512')).toBe(1);
      expect(err.join('\n')).toMatch(/working resolution of 256 px/);
      writeFileSync(join(dir, 'broken.onnx'), 'not a model');
      expect(await cli(...common, join(dir, 'broken.onnx'), '--input-size', '64')).toBe(1);
      expect(err.join('\n')).toMatch(/onnxruntime cannot load the file/);
      expect(h.tasks.filter((t) => t.command[0] === 'import')).toHaveLength(0);

      expect(await cli(...common, onnx, '--input-size', '64', '--json')).toBe(0);
      const reply = JSON.parse(out.join('\n')) as { jobId: string; importId: string; validation: { embeddingDim: number; channels: number } };
      expect(reply.validation).toMatchObject({ embeddingDim: 64, channels: 3, inputName: 'image', outputName: 'features' });
      const task = h.tasks.find((t) => t.command[0] === 'import');
      expect(task?.command).toEqual(['import', '--job-id', reply.jobId, '--import-id', reply.importId, '--max-minutes', '30']);
      expect((await h.request('POST', '/train')).status).toBe(409);
      await h.admin.s3.send(new DeleteObjectCommand({ Bucket: h.artifactsBucket, Key: 'locks/training.json' }));
    });

    it('uploads a directory (multipart for a large file) with progress, then searches by image', async () => {
      h.gateway.trustUser(API_USER.accessKeyId);
      const dir = mkdtempSync(join(tmpdir(), 'cli-upload-'));
      mkdirSync(join(dir, 'sub'));
      writeFileSync(join(dir, 'a.png'), await solidPng(30, 30, [250, 120, 0]));
      writeFileSync(join(dir, 'sub', 'b.png'), await solidPng(31, 31, [0, 120, 250]));
      writeFileSync(join(dir, 'notes.txt'), 'not an image');
      // Noise does not compress: a PNG over the 8 MiB part size goes up in parts.
      const noise = Buffer.alloc(1800 * 1800 * 3);
      for (let i = 0; i < noise.length; i += 1) noise[i] = (i * 2654435761) >>> 24;
      writeFileSync(
        join(dir, 'big.png'),
        await sharp(noise, { raw: { width: 1800, height: 1800, channels: 3 } })
          .png({ compressionLevel: 0 })
          .toBuffer(),
      );
      const before = h.gateway.calls.length;
      expect(await cli('--endpoint', h.api.url, 'upload', dir, '--bucket', h.imagesBucket, '--prefix', 'cli', '--s3-endpoint', h.gateway.endpoint)).toBe(0);
      expect(out.join('\n')).toMatch(/uploaded 3 images/);
      expect(out.join('\n')).toMatch(/skipped 1 files/);
      expect(h.gateway.calls.slice(before).map((c) => c.operation)).toEqual(
        expect.arrayContaining(['CreateMultipartUpload', 'UploadPart', 'CompleteMultipartUpload']),
      );
      for (const key of ['cli/a.png', 'cli/sub/b.png', 'cli/big.png']) await indexed(key);
      expect(await cli('--endpoint', h.api.url, 'search', join(dir, 'a.png'), '--k', '2', '--json')).toBe(0);
      expect(JSON.parse(out.join('\n')).neighbors).toHaveLength(2);
      const huge = join(dir, 'huge.jpg');
      writeFileSync(huge, Buffer.alloc(4 * 1024 * 1024 + 1));
      const calls = h.api.calls.length;
      expect(await cli('--endpoint', h.api.url, 'search', huge)).toBe(1);
      expect(err.join('\n')).toMatch(/at most 4194304 bytes/);
      expect(h.api.calls.length).toBe(calls);
    });
  });

  it('serves the web console through the signing proxy: the list, thumbnails and label queue answer under the api role', async () => {
    const proxy = await startConsoleProxy({ endpoint: h.api.url, signer: new ApiSigner('us-east-1', API_USER), assets: await buildConsoleAssets(), port: 0 });
    try {
      const page = await fetch(`${proxy.url}/`);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('/console/app.js');
      expect((await fetch(`${proxy.url}/console/app.js`)).status).toBe(200);

      const calls = h.api.calls.length;
      const list = await fetch(`${proxy.url}/images?limit=100&state=indexed`);
      expect(list.status).toBe(200);
      const { items } = (await list.json()) as { items: Array<{ key: string; state: string; thumbnail: boolean }> };
      expect(items.map((i) => i.key)).toEqual(expect.arrayContaining(['photos/img 0.png', 'photos/img 1.png']));
      expect(items.every((i) => i.state === 'indexed' && i.thumbnail)).toBe(true);
      expect(h.api.calls.length).toBeGreaterThan(calls); // it went through API Gateway, signed

      // A browser's image request: API Gateway returns the bytes only because the proxy asks for a binary type first.
      const thumb = await fetch(`${proxy.url}/thumbnails?key=${encodeURIComponent('photos/img 0.png')}`, { headers: { accept: '*/*' } });
      expect(thumb.status).toBe(200);
      expect(thumb.headers.get('content-type')).toBe('image/webp');
      const webp = Buffer.from(await thumb.arrayBuffer());
      expect(await sharp(webp).metadata()).toMatchObject({ format: 'webp', width: 40, height: 30 });
      const etag = thumb.headers.get('etag')!;
      expect((await fetch(`${proxy.url}/thumbnails?key=${encodeURIComponent('photos/img 0.png')}`, { headers: { 'if-none-match': etag } })).status).toBe(304);

      const queue = await fetch(`${proxy.url}/label-queue?limit=3`);
      expect(queue.status).toBe(200);
      expect(((await queue.json()) as { items: unknown[] }).items.length).toBeGreaterThan(0);

      // Only this machine's console may use the signature.
      expect((await fetch(`${proxy.url}/health`, { headers: { origin: 'https://evil.example' } })).status).toBe(403);
      expect((await fetch(`${proxy.url}/health`, { headers: { 'sec-fetch-site': 'cross-site' } })).status).toBe(403);
      expect((await fetch(`${proxy.url}/not-a-route`)).status).toBe(404);
    } finally {
      await proxy.close();
    }
  });

  it('removes a deleted image and indexes it again when re-uploaded', async () => {
    const key = 'photos/img 2.png';
    const neighbourKeys = async () =>
      ((await h.request('GET', `/neighbors?key=${encodeURIComponent('photos/img 0.png')}&k=100`)).body as { neighbors: Array<{ key: string }> }).neighbors.map(
        (n) => n.key,
      );
    expect(await neighbourKeys()).toContain(key);
    await h.admin.s3.send(new DeleteObjectCommand({ Bucket: h.imagesBucket, Key: key }));
    expect((await h.request('GET', `/images?key=${encodeURIComponent(key)}`)).status).toBe(404);
    // augment removes its vectors: it is no one's neighbour any more.
    await until('deleted image out of the index', async () => (!(await neighbourKeys()).includes(key) ? true : undefined));
    await put(key, await solidPng(33, 33, [10, 20, 200]));
    await indexed(key);
    expect(await neighbourKeys()).toContain(key);
  });

  it('migrates derived images written before the working resolution, a page per lifecycle tick, through augment', async () => {
    const key = 'photos/legacy.png';
    await put(key, await gradientImage(640, 480));
    await indexed(key);
    // What the previous version left: layout 1 (views.npy at the model's 32x32), and no layout record.
    const id = imageIdForKey(key);
    const meta = (k: string) => h.admin.s3.send(new GetObjectCommand({ Bucket: h.artifactsBucket, Key: k })).then((r) => r.Body!.transformToString());
    const v2 = JSON.parse(await meta(`derived/${id}/meta.json`));
    const { key: k, imageId, etag, sequencer, source, createdAt } = v2;
    const v1 = { schemaVersion: 1, key: k, imageId, etag, sequencer, source, createdAt, file: 'views.npy', shape: [3, 32, 32, 3], views: 2 };
    await h.admin.s3.send(new PutObjectCommand({ Bucket: h.artifactsBucket, Key: `derived/${id}/meta.json`, Body: JSON.stringify(v1) }));
    await h.admin.s3.send(
      new PutObjectCommand({ Bucket: h.artifactsBucket, Key: `derived/${id}/views.npy`, Body: encodeNpyU8([3, 32, 32, 3], new Uint8Array(3 * 32 * 32 * 3)) }),
    );
    await h.admin.s3.send(new DeleteObjectCommand({ Bucket: h.artifactsBucket, Key: 'layout/derived.json' }));

    const tick = (await h.lifecycleTick()) as { migration?: { state: string } };
    expect(tick.migration).toEqual({ state: 'done' });
    await until('re-derived at the working resolution', async () => (JSON.parse(await meta(`derived/${id}/meta.json`)).schemaVersion === 2 ? true : undefined));
    expect(JSON.parse(await meta(`derived/${id}/meta.json`))).toMatchObject({ canonical: { width: 341, height: 256 } });
    await until('layout 1 file removed', async () => ((await meta(`derived/${id}/views.npy`).catch(() => undefined)) === undefined ? true : undefined));
    expect(JSON.parse(await meta('layout/derived.json'))).toMatchObject({ schemaVersion: 2, workingSize: 256 });
    await indexed(key);
  });

  it('dead-letters a message that fails every attempt, shows its error, and redrives it once the cause is gone', async () => {
    const key = 'photos/poison.png';
    const heal = h.gateway.injectFault((c) => c.role.startsWith('Augment') && c.operation === 'PutObject' && c.resource.includes('/derived/'));
    await put(key, await solidPng(20, 20, [90, 90, 90]));
    const letters = await until(
      'a dead letter',
      async () => {
        const r = await h.request('GET', '/dead-letters');
        const ingest = (r.body as { queues: Array<{ queue: string; count: number; messages: Array<{ error?: string }> }> }).queues.find(
          (q) => q.queue === 'ingest',
        );
        return ingest && ingest.count > 0 && ingest.messages[0]?.error ? ingest : undefined;
      },
      120_000,
    );
    expect(letters.messages[0]!.error).toMatch(/internal error|InternalError/i);
    heal();
    const redrive = await h.request('POST', '/dead-letters/redrive', { body: JSON.stringify({ queue: 'ingest' }), contentType: 'application/json' });
    expect(redrive.status).toBe(200);
    await indexed(key);
  });

  it.each([
    ['augment', 's3:ListBucket', /AugmentFunctionServiceRole\S* (HeadObject|GetObject): s3:ListBucket on arn:aws:s3:::\S+ \(read of a missing key/],
    [
      'embed',
      's3vectors:PutVectors',
      /EmbedFunctionServiceRole\S* PutVectors: s3vectors:PutVectors on arn:aws:s3vectors:\S+\/index\/emb-v0 \(ImplicitlyDenied\)/,
    ],
  ] as const)('fails, naming the call, when the %s role loses %s (mutation check)', async (fn, action, expected) => {
    const role = h.functions[fn].roleLogicalId;
    h.iam.revoke(role, action);
    try {
      await put(`photos/mutation-${fn}.png`, await solidPng(24, 24, [fn === 'augment' ? 120 : 60, 10, 10]));
      const report = await until('the denied call', async () => (h.gateway.violations.length > 0 ? h.violationReport() : undefined));
      expect(report).toMatch(expected);
    } finally {
      h.iam.restore();
    }
    h.gateway.violations.length = 0;
    // With the grant back, the retried message goes through.
    await indexed(`photos/mutation-${fn}.png`);
  });
});

/**
 * Load on the embedded API: wrk (a separate process) with 16 connections on GET /neighbors.
 * Zero errors and non-2xx answers; the stack's memory does not grow from one run to the next.
 * (`npm run bench -- http` runs the same load for 60 s and records the numbers.)
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { rssMb, wrkNeighbors } from '../../bench/lib/wrk';
import { loadFashionMnist, pngName, toPng } from '../../scripts/fashion-mnist';
import { getJson, startStackProcess, waitFor, type StackProcess } from '../support/stack-process';

const COUNT = 200;

describe('embedded API under load', () => {
  let stack: StackProcess;
  afterAll(async () => {
    await stack?.stop();
  });

  it('holds 16 concurrent connections on /neighbors with zero errors and stable memory', async () => {
    stack = await startStackProcess(mkdtempSync(join(tmpdir(), 'e2e-load-')));
    const fm = loadFashionMnist('t10k', COUNT);
    const keys = fm.images.map((_, i) => `load/${pngName('t10k', i)}`);
    const s3 = new S3Client({ endpoint: stack.s3, forcePathStyle: true, region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
    for (let i = 0; i < COUNT; i += 25) {
      await Promise.all(
        keys.slice(i, i + 25).map(async (Key, j) => s3.send(new PutObjectCommand({ Bucket: 'images', Key, Body: await toPng(fm.images[i + j]!) }))),
      );
    }
    s3.destroy();
    await waitFor('all indexed', async () => ((await getJson<{ indexed: number }>(`${stack.api}/health`)).body.indexed === COUNT ? true : undefined), 120_000);

    const warm = await wrkNeighbors(stack.api, keys, 16, 5);
    const before = rssMb(stack.pid);
    const runs = [await wrkNeighbors(stack.api, keys, 16, 10), await wrkNeighbors(stack.api, keys, 16, 10)];
    const after = rssMb(stack.pid);
    console.log(
      `wrk 16 connections: warm-up ${warm.requestsPerSecond} req/s; runs ${runs.map((r) => `${r.requestsPerSecond} req/s p99 ${r.latencyMs.p99} ms`).join(', ')}; RSS ${before.toFixed(0)} -> ${after.toFixed(0)} MB`,
    );
    for (const r of [warm, ...runs]) {
      expect(r.requests).toBeGreaterThan(100);
      expect(r.non2xx).toBe(0);
      expect(r.socketErrors).toEqual({ connect: 0, read: 0, write: 0, timeout: 0 });
    }
    // 20 s of traffic after warm-up: a leak of even 1 KB per request would show as tens of MB.
    expect(after - before).toBeLessThan(64);
  }, 300_000);
});

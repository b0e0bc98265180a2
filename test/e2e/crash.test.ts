/**
 * Crash safety of the embedded stack: kill -9 of the stack process at several moments of ingest,
 * during a training run and during a rollout, each time restarted on the same data directory.
 * Afterwards every image is indexed exactly once, the queues are drained with nothing
 * dead-lettered, the interrupted run is marked failed and its lock released, and the rollout
 * completes.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { CLASS_NAMES, loadFashionMnist, pngName, toPng } from '../../scripts/fashion-mnist';
import { getJson, startStackProcess, waitFor, type StackProcess } from '../support/stack-process';

const COUNT = 300;
const ENV = {
  RETRAIN_MIN_NEW_LABELS: '100000', // training starts only when asked
  RETRAIN_INTERVAL_MINUTES: '0',
  LIFECYCLE_INTERVAL_SECONDS: '1',
  TRAINER_BATCH_SIZE: '64',
};

interface Health {
  indexed: number;
  pending: number;
  quarantined: number;
}

function trainerProcesses(jobId: string): string[] {
  try {
    return execFileSync('pgrep', ['-f', `pipeline_trainer run --job-id ${jobId}`], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .filter(Boolean);
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

describe('crash safety (kill -9)', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'e2e-crash-'));
  const fm = loadFashionMnist('t10k', COUNT);
  const keys = fm.images.map((_, i) => `crash/${pngName('t10k', i)}`);
  let pngs: Buffer[];
  let stack: StackProcess | undefined;
  const confirmed = new Set<string>();

  const uploadUnconfirmed = async (s: StackProcess): Promise<void> => {
    const s3 = new S3Client({
      endpoint: s.s3,
      forcePathStyle: true,
      region: 'us-east-1',
      credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
      maxAttempts: 1,
    });
    try {
      const remaining = keys.map((k, i) => [k, i] as const).filter(([k]) => !confirmed.has(k));
      for (let i = 0; i < remaining.length; i += 10) {
        await Promise.all(
          remaining.slice(i, i + 10).map(async ([Key, j]) => {
            await s3.send(new PutObjectCommand({ Bucket: 'images', Key, Body: pngs[j] }));
            confirmed.add(Key);
          }),
        );
      }
    } finally {
      s3.destroy();
    }
  };

  beforeAll(async () => {
    pngs = await Promise.all(fm.images.map((px) => toPng(px)));
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('ingest, training and rollout each survive kill -9; everything ends indexed exactly once', async () => {
    // ---- ingest: killed three times mid-upload, at different moments ---------------------------
    for (const delayMs of [700, 1800, 3500]) {
      stack = await startStackProcess(dataDir, ENV);
      const uploading = uploadUnconfirmed(stack).catch(() => undefined); // the kill breaks in-flight uploads
      await new Promise((r) => setTimeout(r, delayMs));
      await stack.crash();
      await uploading;
      console.log(`kill -9 after ${delayMs} ms: ${confirmed.size}/${COUNT} uploads acknowledged so far`);
    }
    stack = await startStackProcess(dataDir, ENV);
    await uploadUnconfirmed(stack); // the client retries what was never acknowledged
    expect(confirmed.size).toBe(COUNT);
    const api = stack.api;
    const health = await waitFor(
      'every image indexed, nothing pending',
      async () => {
        const h = (await getJson<Health>(`${api}/health`)).body;
        return h.indexed === COUNT && h.pending === 0 ? h : undefined;
      },
      240_000,
    );
    expect(health.quarantined).toBe(0);
    for (const key of keys) {
      expect((await getJson<{ state: string }>(`${api}/images?key=${encodeURIComponent(key)}`)).body.state).toBe('indexed');
    }
    const dead = (await getJson<{ queues: Array<{ count: number }> }>(`${api}/dead-letters`)).body;
    expect(dead.queues.map((q) => q.count)).toEqual([0, 0]);

    // ---- training: killed while the trainer runs --------------------------------------------------
    const labels = keys.slice(0, 60).map((key, i) => ({ key, label: CLASS_NAMES[fm.labels[i]!]! }));
    expect((await fetch(`${api}/labels`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ labels }) })).status).toBe(
      200,
    );
    const started = await fetch(`${api}/train`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ maxMinutes: 1 }) });
    expect(started.status).toBe(202);
    const { jobId } = (await started.json()) as { jobId: string };
    await waitFor('the trainer process', async () => (trainerProcesses(jobId).length > 0 ? true : undefined), 30_000, 100);
    await new Promise((r) => setTimeout(r, 3000));
    await stack.crash();
    // The trainer dies with the stack: no orphan keeps training or holding the lock.
    await waitFor('the trainer to die with the stack', async () => (trainerProcesses(jobId).length === 0 ? true : undefined), 15_000, 100);

    stack = await startStackProcess(dataDir, ENV);
    const after = (await getJson<{ runs: Array<{ jobId: string; state: string; error?: string }> }>(`${stack.api}/models`)).body;
    expect(after.runs.find((r) => r.jobId === jobId)).toMatchObject({ state: 'failed', error: expect.stringMatching(/abandoned/) });
    // The lock was released: a new run starts at once (it would be 409 otherwise).
    const again = await fetch(`${stack.api}/train`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ maxMinutes: 1 }),
    });
    expect(again.status).toBe(202);

    // ---- rollout: killed as soon as the candidate's backfill has begun ----------------------------
    const api2 = stack.api;
    await waitFor(
      'a candidate being backfilled',
      async () => {
        const m = (
          await getJson<{ candidate?: { version: string }; serving: { version: string }; runs: Array<{ state: string; error?: string }> }>(`${api2}/models`)
        ).body;
        if (m.serving.version !== 'v0') throw new Error('the rollout finished before the test could interrupt it');
        const bad = m.runs.find((r) => r.state === 'rejected' || (r.state === 'failed' && !/abandoned/.test(r.error ?? '')));
        if (bad) throw new Error(`training did not publish: ${JSON.stringify(bad)}\n${stack!.output()}`);
        return m.candidate ? true : undefined;
      },
      300_000,
      50,
    );
    await stack.crash();

    stack = await startStackProcess(dataDir, ENV);
    const api3 = stack.api;
    await waitFor(
      'v1 serving',
      async () => ((await getJson<{ serving: { version: string } }>(`${api3}/models`)).body.serving.version === 'v1' ? true : undefined),
      120_000,
    );
    const final = (await getJson<Health>(`${api3}/health`)).body;
    expect(final).toMatchObject({ indexed: COUNT, pending: 0, quarantined: 0 });
    for (const key of keys) {
      expect((await getJson<{ state: string; modelVersion: string }>(`${api3}/images?key=${encodeURIComponent(key)}`)).body).toMatchObject({
        state: 'indexed',
        modelVersion: 'v1',
      });
    }
    const neighbors = (await getJson<{ neighbors: Array<{ key: string }> }>(`${api3}/neighbors?key=${encodeURIComponent(keys[0]!)}&k=10`)).body.neighbors.map(
      (n) => n.key,
    );
    expect(new Set(neighbors).size).toBe(10);
    expect((await getJson<{ queues: Array<{ count: number }> }>(`${api3}/dead-letters`)).body.queues.map((q) => q.count)).toEqual([0, 0]);
  }, 900_000);
});

/**
 * Upgrading a data directory written by the previous version (test/fixtures/data-dir-layout1.tar.gz:
 * 24 Fashion-MNIST images, 2 photos of 640x480 and 480x720, 3 labels, v0 serving; derived images stored
 * at the model's 32x32 in views.npy). On start the stack re-derives every image from its original at
 * the working resolution, with progress, re-embeds them, and loses nothing: keys, labels, the model
 * and the neighbours are all there; a second start has nothing left to do.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { getJson, startStackProcess, waitFor, type StackProcess } from '../support/stack-process';

const FIXTURE = resolve(__dirname, '../fixtures/data-dir-layout1.tar.gz');

async function listAll(s3: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    keys.push(...(page.Contents ?? []).map((o) => o.Key!));
    token = page.NextContinuationToken;
  } while (token);
  return keys;
}

describe('a data directory written by the previous version', () => {
  let stack: StackProcess | undefined;
  afterEach(async () => {
    await stack?.stop();
    stack = undefined;
  });

  it('is migrated to the working resolution on start, with progress, and nothing is lost', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'e2e-migrate-'));
    execFileSync('tar', ['-xzf', FIXTURE, '-C', dataDir]);
    stack = await startStackProcess(dataDir);
    const s3 = new S3Client({ endpoint: stack.s3, forcePathStyle: true, region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'a' } });
    const images = await listAll(s3, 'images', '');
    expect(images).toHaveLength(26);
    await waitFor(
      'migration complete',
      async () => (/migration complete: 26 images re-derived at 256 px/.test(stack!.output()) ? true : undefined),
      120_000,
      500,
    );
    expect(stack.output()).toMatch(/26 of 26 images are stored below the working resolution \(256 px\) or without a thumbnail: re-deriving them/);
    expect(stack.output()).toMatch(/migration: 26\/26 re-derived/);

    const derived = await listAll(s3, 'artifacts', 'derived/');
    expect(derived.filter((k) => k.endsWith('/views.npy'))).toEqual([]);
    expect(derived.filter((k) => k.endsWith('/canonical.png'))).toHaveLength(26);
    const metas = await Promise.all(
      derived
        .filter((k) => k.endsWith('/meta.json'))
        .map(async (Key) => JSON.parse(await (await s3.send(new GetObjectCommand({ Bucket: 'artifacts', Key }))).Body!.transformToString())),
    );
    expect(metas.every((m) => m.schemaVersion === 2)).toBe(true);
    const photo = metas.find((m) => m.key === 'photos/photo-0.jpg');
    expect(photo).toMatchObject({ canonical: { width: 341, height: 256 }, source: { width: 640, height: 480 } });

    // Nothing lost: every image indexed again (by the same model), labels kept, neighbours answered.
    await waitFor(
      'all re-embedded',
      async () => {
        const h = (await getJson<{ indexed: number; pending: number; servingModel: string }>(`${stack!.api}/health`)).body;
        return h.indexed === 26 && h.pending === 0 ? h : undefined;
      },
      120_000,
      500,
    );
    expect((await getJson<{ servingModel: string }>(`${stack.api}/health`)).body.servingModel).toBe('v0');
    expect(await listAll(s3, 'artifacts', 'labels/')).toHaveLength(3);
    const labelled = images.find((k) => k.startsWith('fashion/t10k-00000'))!;
    const { status, body } = await getJson<{ neighbors: Array<{ key: string; label?: string }> }>(
      `${stack.api}/neighbors?key=${encodeURIComponent(labelled)}&k=25`,
    );
    expect(status).toBe(200);
    expect(body.neighbors).toHaveLength(25);
    expect(body.neighbors.filter((n) => n.label !== undefined)).toHaveLength(2);
    s3.destroy();

    // A second start: the layout record says everything is at the working resolution; no scan, no work.
    await stack.stop();
    stack = await startStackProcess(dataDir);
    await new Promise((r) => setTimeout(r, 3000));
    expect(stack.output()).not.toMatch(/re-deriving|migration/);
  }, 300_000);
});

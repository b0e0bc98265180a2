/**
 * The embedded stack end to end, as a user runs it: start, upload Fashion-MNIST PNGs with the AWS
 * SDK, wait until they are indexed, query neighbours, restart on the same data directory.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { loadFashionMnist, pngName, rawPixelAgreement, toPng } from '../../scripts/fashion-mnist';
import { getJson, startStackProcess, waitFor, type StackProcess } from '../support/stack-process';

const COUNT = 200;

interface Neighbors {
  query: { key: string; modelVersion: string };
  neighbors: Array<{ key: string; distance: number }>;
}

describe('embedded stack', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'e2e-stack-'));
  const fm = loadFashionMnist('t10k', COUNT);
  const keys = fm.images.map((_, i) => `fm/${pngName('t10k', i)}`);
  const labelOf = new Map(keys.map((k, i) => [k, fm.labels[i]!]));
  let stack: StackProcess;

  afterAll(async () => {
    await stack?.stop();
  });

  it('indexes uploaded images and answers /neighbors; a restart keeps everything', async () => {
    stack = await startStackProcess(dataDir);
    expect((await getJson<{ status: string; servingModel: string }>(`${stack.api}/health`)).body).toMatchObject({ status: 'ok', servingModel: 'v0' });

    const s3 = new S3Client({ endpoint: stack.s3, forcePathStyle: true, region: 'us-east-1', credentials: { accessKeyId: 'any', secretAccessKey: 'any' } });
    const pngs = await Promise.all(fm.images.map((px) => toPng(px)));
    for (let i = 0; i < COUNT; i += 20) {
      await Promise.all(
        keys.slice(i, i + 20).map((Key, j) => s3.send(new PutObjectCommand({ Bucket: 'images', Key, Body: pngs[i + j], ContentType: 'image/png' }))),
      );
    }
    s3.destroy();

    await waitFor(
      `${COUNT} images indexed`,
      async () => {
        const h = (await getJson<{ indexed: number; pending: number }>(`${stack.api}/health`)).body;
        return h.indexed === COUNT && h.pending === 0 ? h : undefined;
      },
      240_000,
    );
    for (const key of keys.slice(0, 5)) {
      expect((await getJson(`${stack.api}/images?key=${encodeURIComponent(key)}`)).body).toEqual({ key, state: 'indexed', modelVersion: 'v0' });
    }

    let agreement = 0;
    const firstAnswer = new Map<string, string[]>();
    for (const key of keys) {
      const { status, body } = await getJson<Neighbors>(`${stack.api}/neighbors?key=${encodeURIComponent(key)}&k=10`);
      expect(status).toBe(200);
      const found = body.neighbors.map((n) => n.key);
      expect(found).toHaveLength(10);
      expect(new Set(found).size).toBe(10);
      expect(found).not.toContain(key);
      expect(body.query).toEqual({ key, modelVersion: 'v0' });
      agreement += found.filter((n) => labelOf.get(n) === labelOf.get(key)).length / 10;
      firstAnswer.set(key, found);
    }
    agreement /= COUNT;
    const raw = rawPixelAgreement(fm.images, fm.labels, 10);
    console.log(`same-class share of 10 neighbours over ${COUNT} images: encoder v0 ${agreement.toFixed(4)}, raw pixels ${raw.toFixed(4)}, chance 0.1`);
    expect(agreement).toBeGreaterThan(0.4);
    expect(agreement).toBeGreaterThan(0.85 * raw);

    expect(await stack.stop()).toBe(0);
    stack = await startStackProcess(dataDir);
    expect((await getJson<{ indexed: number; servingModel: string }>(`${stack.api}/health`)).body).toMatchObject({ indexed: COUNT, servingModel: 'v0' });
    const again = await getJson<Neighbors>(`${stack.api}/neighbors?key=${encodeURIComponent(keys[7]!)}&k=10`);
    expect(again.body.neighbors.map((n) => n.key)).toEqual(firstAnswer.get(keys[7]!));
  }, 400_000);
});

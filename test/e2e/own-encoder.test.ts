/**
 * Your own photos and your own encoder, end to end on the embedded stack: an ONNX encoder with a
 * 128x128 input is imported with the CLI (validated, gated, rolled out), photos of 300 px and more are
 * uploaded, and the vector stored for each is the one made from the original: POST /search with the
 * original finds the photo itself at distance 0 (search and ingest make the model input from the same
 * working image), and that working image is far closer to the one-step resize of the original than a
 * 32x32 thumbnail (what derived data at the old model size kept). Then a better Fashion-MNIST encoder,
 * imported with its weights, raises neighbour agreement from the first query, and a training run
 * warm-starts from it behind the gate.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { main as cli } from '../../cli/pipeline';
import { OnnxEncoder } from '../../shared/adapters/onnx-encoder';
import { DEFAULT_DERIVED, decodeToWorking, modelPixels } from '../../shared/derived-layout';
import { canonicalize, decodeImage } from '../../shared/image/decode';
import { toModelInput } from '../../shared/image/tensor';
import { ModelManifestSchema, type ModelManifest } from '../../shared/schemas';
import { loadFashionMnist, pngName, toPng } from '../../scripts/fashion-mnist';
import { importArgs, makeEncoder } from '../support/encoders';
import { photoLike } from '../support/images';
import { getJson, startStackProcess, waitFor, type StackProcess } from '../support/stack-process';

function s3Of(stack: StackProcess): S3Client {
  return new S3Client({ endpoint: stack.s3, forcePathStyle: true, region: 'us-east-1', credentials: { accessKeyId: 'any', secretAccessKey: 'any' } });
}

async function quietCli(argv: string[]): Promise<number> {
  const out = jest.spyOn(console, 'log').mockImplementation(() => undefined);
  const err = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    return await cli(argv);
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

async function servingVersion(stack: StackProcess): Promise<string> {
  return (await getJson<{ servingModel: string }>(`${stack.api}/health`)).body.servingModel;
}

async function waitServing(stack: StackProcess, version: string, timeoutMs: number): Promise<void> {
  await waitFor(`${version} serving`, async () => ((await servingVersion(stack)) === version ? true : undefined), timeoutMs, 500);
}

async function manifestOf(s3: S3Client, version: string): Promise<ModelManifest> {
  const res = await s3.send(new GetObjectCommand({ Bucket: 'artifacts', Key: `models/${version}/manifest.json` }));
  return ModelManifestSchema.parse(JSON.parse(await res.Body!.transformToString()));
}

const cosineDistance = (a: Float32Array, b: Float32Array) => 1 - a.reduce((s, v, i) => s + v * b[i]!, 0);

describe('your own photos with your own encoder', () => {
  const work = mkdtempSync(join(tmpdir(), 'e2e-own-'));
  let stack: StackProcess | undefined;

  afterEach(async () => {
    await stack?.stop();
    stack = undefined;
  });

  it('imports a 128x128 encoder, and every photo of 300 px or more is stored as the vector of its original', async () => {
    stack = await startStackProcess(join(work, 'photos'));
    const onnxPath = join(work, 'detail.onnx');
    makeEncoder(['detail', '--size', '128', '--out', onnxPath]);
    expect(await quietCli(importArgs(stack, onnxPath, 128))).toBe(0);
    await waitServing(stack, 'v1', 60_000);
    const s3 = s3Of(stack);
    const manifest = await manifestOf(s3, 'v1');
    expect(manifest).toMatchObject({
      parent: 'v0',
      input: { height: 128, width: 128, channels: 3 },
      encoder: { inputName: 'image', outputName: 'features', embeddingDim: 64 },
      training: { kind: 'import' },
      gate: { passed: true },
    });

    // Ordinary photo sizes: 300 px shorter side up to 1,400 px longer side, JPEG and PNG.
    const sizes: Array<[number, number]> = [
      [300, 400],
      [640, 480],
      [480, 720],
      [1024, 768],
      [1400, 933],
      [512, 512],
      [900, 300],
      [333, 1000],
    ];
    const photos = await Promise.all(sizes.map(([w, h], i) => photoLike(w, h, i + 1, i % 3 === 2 ? 'png' : 'jpeg')));
    const keys = sizes.map(([w, h], i) => `photos/p${i}-${w}x${h}.${i % 3 === 2 ? 'png' : 'jpg'}`);
    await Promise.all(keys.map((Key, i) => s3.send(new PutObjectCommand({ Bucket: 'images', Key, Body: photos[i] }))));
    await waitFor(
      'photos indexed by v1',
      async () => {
        const states = await Promise.all(
          keys.map(async (k) => (await getJson<{ state: string; modelVersion?: string }>(`${stack!.api}/images?key=${encodeURIComponent(k)}`)).body),
        );
        return states.every((s) => s.state === 'indexed' && s.modelVersion === 'v1') ? true : undefined;
      },
      120_000,
      500,
    );

    const onnx = Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: 'artifacts', Key: 'models/v1/encoder.onnx' }))).Body!.transformToByteArray());
    s3.destroy();
    const encoder = await OnnxEncoder.create(manifest, onnx);
    const spec = manifest.input;
    const embed = async (pixels: Buffer) => (await encoder.embed([toModelInput(pixels, spec)]))[0]!;
    const report: Array<Record<string, number | string>> = [];
    for (const [i, key] of keys.entries()) {
      const res = await fetch(`${stack.api}/search?k=3`, { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: photos[i] });
      const found = (await res.json()) as { neighbors: Array<{ key: string; distance: number }> };
      expect(res.status).toBe(200);
      // The stored vector is the one made from the original: the photo finds itself first, at distance 0.
      expect(found.neighbors[0]).toMatchObject({ key });
      expect(found.neighbors[0]!.distance).toBeLessThanOrEqual(1e-5);

      const decoded = await decodeImage(photos[i]!, { maxPixels: 1e8, maxSide: 1024 });
      const oneStep = await embed(await canonicalize(decoded, spec));
      const twoStep = await embed(await modelPixels((await decodeToWorking(photos[i]!, 1e8, DEFAULT_DERIVED)).working, spec));
      const thumb32 = await canonicalize(decoded, { ...spec, height: 32, width: 32 });
      const fromThumb = await embed(await canonicalize({ width: 32, height: 32, rgb: thumb32, format: 'raw' }, spec));
      const twoSteps = cosineDistance(oneStep, twoStep);
      const thumbnail = cosineDistance(oneStep, fromThumb);
      report.push({ key, twoSteps, thumbnail });
      // Resizing in two steps (original -> working -> 128) instead of one moves the vector far less than a 32x32 thumbnail does.
      expect(twoSteps).toBeLessThan(thumbnail / 2);
    }
    writeFileSync(join(work, 'photo-distances.json'), JSON.stringify(report, null, 2));
  }, 400_000);

  it('a better imported encoder raises agreement from the first query; a training run warm-starts from it behind the gate', async () => {
    stack = await startStackProcess(join(work, 'fashion'), { RETRAIN_MIN_NEW_LABELS: '0', TRAINER_MAX_STEPS: '20', TRAINER_BATCH_SIZE: '64' });
    const COUNT = 300;
    const fm = loadFashionMnist('t10k', COUNT);
    const keys = fm.images.map((_, i) => `fm/${pngName('t10k', i)}`);
    const labelOf = new Map(keys.map((k, i) => [k, fm.labels[i]!]));
    const s3 = s3Of(stack);
    for (let i = 0; i < COUNT; i += 25) {
      await Promise.all(
        keys.slice(i, i + 25).map(async (Key, j) => s3.send(new PutObjectCommand({ Bucket: 'images', Key, Body: await toPng(fm.images[i + j]!) }))),
      );
    }
    const indexedBy = async (version: string) =>
      waitFor(
        `${COUNT} indexed by ${version}`,
        async () => {
          const h = (await getJson<{ indexed: number; pending: number; servingModel: string }>(`${stack!.api}/health`)).body;
          return h.indexed === COUNT && h.pending === 0 && h.servingModel === version ? true : undefined;
        },
        240_000,
        500,
      );
    await indexedBy('v0');
    const agreement = async () => {
      let same = 0;
      let total = 0;
      for (const key of keys.slice(0, 100)) {
        const { body } = await getJson<{ neighbors: Array<{ key: string }> }>(`${stack!.api}/neighbors?key=${encodeURIComponent(key)}&k=10`);
        for (const n of body.neighbors) {
          same += labelOf.get(n.key) === labelOf.get(key) ? 1 : 0;
          total += 1;
        }
      }
      return same / total;
    };
    const v0 = await agreement();

    const onnxPath = join(work, 'fashion.onnx');
    const weightsPath = join(work, 'fashion.pt');
    makeEncoder(['fashion', '--size', '64', '--seconds', '45', '--count', '20000', '--out', onnxPath, '--weights-out', weightsPath]);
    expect(await quietCli(importArgs(stack, onnxPath, 64, weightsPath))).toBe(0);
    await waitServing(stack, 'v1', 120_000);
    await indexedBy('v1');
    const imported = await agreement();
    // No training: the imported encoder's neighbours agree with the true classes far more often.
    expect(imported).toBeGreaterThan(v0 + 0.05);
    expect((await manifestOf(s3, 'v1')).training).toMatchObject({ kind: 'import', path: expect.stringContaining('with weights') });

    // Labels (10 per class: 20 held out, enough for the paired test), then a run: it continues from the import.
    const labels = keys.filter((_, i) => i < 200).map((key) => ({ key, label: `class-${labelOf.get(key)}` }));
    const res = await fetch(`${stack.api}/labels`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ labels }) });
    expect(res.status).toBe(200);
    const train = await fetch(`${stack.api}/train`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ maxMinutes: 2 }),
    });
    expect(train.status).toBe(202);
    const { jobId } = (await train.json()) as { jobId: string };
    const run = await waitFor(
      `run ${jobId} final`,
      async () => {
        const runs = (
          await getJson<{ runs: Array<{ jobId: string; state: string; version?: string; gate?: { passed: boolean; rule?: string } }> }>(`${stack!.api}/models`)
        ).body.runs;
        const r = runs.find((x) => x.jobId === jobId);
        return r && r.state !== 'running' ? r : undefined;
      },
      300_000,
      1000,
    );
    expect(['published', 'rejected']).toContain(run.state);
    const trained = await manifestOf(s3, run.version!);
    expect(trained.training).toMatchObject({ path: 'warm start from v1 (imported)' });
    expect(trained.gate.rule).toMatch(/paired test/);
    s3.destroy();
    if (run.state === 'published') await waitServing(stack, run.version!, 120_000);
    else expect(await servingVersion(stack)).toBe('v1');
  }, 900_000);
});

/**
 * `npm run bench -- derived-format`: bytes and time per image of the formats considered for the
 * stored canonical image (working resolution, shorter side 256) and the views strip.
 *
 * `npm run bench -- own-encoder`: quality with an imported encoder, on a fresh embedded stack:
 *   fashion  1,000 Fashion-MNIST test images; neighbour agreement@10 (share of the 10 neighbours with
 *            the query's class) with v0, raw pixels, a stand-in pretrained encoder imported with its
 *            weights (the trainer's small ResNet at 64x64 trained with labels on the train split),
 *            and after a training run that warm-starts from it behind the gate;
 *   photos   ordinary photos with an imported encoder whose 128x128 input is sensitive to fine detail:
 *            each photo searched for with its original (POST /search): rank and distance of itself,
 *            next to what resizing in two steps instead of one, and what a 32x32 thumbnail, give.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import sharp from 'sharp';
import { main as cli } from '../cli/pipeline';
import { OnnxEncoder } from '../shared/adapters/onnx-encoder';
import { DEFAULT_DERIVED, decodeToWorking, encodeCanonical, modelPixels, packViews, viewSideFor } from '../shared/derived-layout';
import { renderViews } from '../shared/image/augment-views';
import { canonicalize, decodeImage } from '../shared/image/decode';
import { toModelInput } from '../shared/image/tensor';
import { ModelManifestSchema } from '../shared/schemas';
import { loadFashionMnist, pngName, rawPixelAgreement, toPng } from '../scripts/fashion-mnist';
import { getJson, startStackProcess, waitFor, type StackProcess } from '../test/support/stack-process';
import { importArgs, makeEncoder } from '../test/support/encoders';
import { benchPhotos } from './lib/photos';
import { type BenchContext, flag, round, writeResult } from './lib/common';

const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

export async function derivedFormatBench(ctx: BenchContext): Promise<void> {
  const { source, photos } = await benchPhotos(ctx.quick ? 400 : 300);
  const reps = ctx.quick ? 1 : 5;
  const workings = await Promise.all(photos.map(async (p) => (await decodeToWorking(p.bytes, 1e8, DEFAULT_DERIVED)).working));
  const raw = (w: (typeof workings)[number]) => ({ raw: { width: w.width, height: w.height, channels: 3 as const } });
  const formats: Record<string, (w: (typeof workings)[number]) => Promise<Buffer>> = {
    'raw (npy)': async (w) => w.rgb,
    'PNG level 1 (chosen)': (w) => encodeCanonical(w),
    'PNG level 1, adaptive filtering': (w) => sharp(w.rgb, raw(w)).png({ compressionLevel: 1, adaptiveFiltering: true }).toBuffer(),
    'PNG level 6': (w) => sharp(w.rgb, raw(w)).png({ compressionLevel: 6 }).toBuffer(),
    'WebP lossless effort 1': (w) => sharp(w.rgb, raw(w)).webp({ lossless: true, effort: 1 }).toBuffer(),
    'WebP lossless effort 4': (w) => sharp(w.rgb, raw(w)).webp({ lossless: true }).toBuffer(),
    'JPEG q95 (lossy)': (w) => sharp(w.rgb, raw(w)).jpeg({ quality: 95 }).toBuffer(),
  };
  const canonical: Record<string, unknown> = {};
  for (const [name, encode] of Object.entries(formats)) {
    let bytes = 0;
    let enc = 0;
    let dec = 0;
    for (const w of workings) {
      let out: Buffer = Buffer.alloc(0);
      const t0 = process.hrtime.bigint();
      for (let r = 0; r < reps; r += 1) out = await encode(w);
      enc += ms(t0) / reps;
      if (!name.startsWith('raw')) {
        const t1 = process.hrtime.bigint();
        for (let r = 0; r < reps; r += 1) await sharp(out).raw().toBuffer();
        dec += ms(t1) / reps;
      }
      bytes += out.length;
    }
    canonical[name] = {
      kibPerImage: round(bytes / workings.length / 1024, 1),
      encodeMs: round(enc / workings.length, 2),
      decodeMs: round(dec / workings.length, 2),
    };
    console.log(`  canonical ${name.padEnd(22)} ${JSON.stringify(canonical[name])}`);
  }
  // The views: K = 2 at VIEW_SIZE, as augment writes them.
  let rawViews = 0;
  let jpegViews = 0;
  let jpegMs = 0;
  for (const [i, p] of photos.entries()) {
    const decoded = await decodeImage(p.bytes, { maxPixels: 1e8, maxSide: 1024 });
    const side = viewSideFor(workings[i]!, DEFAULT_DERIVED.viewSize);
    const views = await renderViews(decoded, { side }, 2, `bench-${i}`);
    rawViews += views.reduce((n, v) => n + v.length, 0);
    const t0 = process.hrtime.bigint();
    jpegViews += (await packViews(views, side)).length;
    jpegMs += ms(t0);
  }
  const viewsResult = {
    'raw (npy)': { kibPerImage: round(rawViews / photos.length / 1024, 1) },
    'JPEG q90 4:4:4 strip (chosen)': { kibPerImage: round(jpegViews / photos.length / 1024, 1), encodeMs: round(jpegMs / photos.length, 2) },
  };
  console.log(`  views ${JSON.stringify(viewsResult)}`);
  const fm = loadFashionMnist('t10k', 200);
  const fmPngs = await Promise.all(fm.images.map(async (px) => encodeCanonical((await decodeToWorking(await toPng(px), 1e8, DEFAULT_DERIVED)).working)));
  writeResult(ctx, 'derived-format', {
    photos: { source, count: photos.length, names: photos.map((p) => `${p.name} ${p.width}x${p.height}`) },
    workingSize: DEFAULT_DERIVED.workingSize,
    canonical,
    views: viewsResult,
    fashionMnistCanonicalPngBytes: round(fmPngs.reduce((n, b) => n + b.length, 0) / fmPngs.length, 0),
  });
}

async function runCli(argv: string[]): Promise<number> {
  const log = console.log;
  console.log = () => undefined;
  try {
    return await cli(argv);
  } finally {
    console.log = log;
  }
}

const s3Of = (stack: StackProcess) =>
  new S3Client({ endpoint: stack.s3, forcePathStyle: true, region: 'us-east-1', credentials: { accessKeyId: 'b', secretAccessKey: 'b' } });

async function health(stack: StackProcess) {
  return (await getJson<{ indexed: number; pending: number; servingModel: string }>(`${stack.api}/health`)).body;
}

async function settled(stack: StackProcess, count: number, version?: string, timeoutMs = 900_000): Promise<void> {
  await waitFor(
    `${count} indexed${version ? ` by ${version}` : ''}`,
    async () => {
      const h = await health(stack);
      return h.indexed === count && h.pending === 0 && (!version || h.servingModel === version) ? true : undefined;
    },
    timeoutMs,
    1000,
  );
}

export async function ownEncoderBench(ctx: BenchContext): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'bench-own-'));
  const result: Record<string, unknown> = {};

  const only = flag(ctx.args, 'only');
  // ---- photos: the stored vector is the original's ------------------------------------------
  if (!only || only === 'photos') {
    const { source, photos } = await benchPhotos(300);
    const stack = await startStackProcess(join(work, 'photos'));
    try {
      const onnxPath = join(work, 'detail.onnx');
      makeEncoder(['detail', '--size', '128', '--out', onnxPath]);
      if ((await runCli(['--api', stack.api, 'models', 'import', onnxPath, '--input-size', '128', '--s3-endpoint', stack.s3])) !== 0)
        throw new Error('import failed');
      await waitFor('v1 serving', async () => ((await health(stack)).servingModel === 'v1' ? true : undefined), 120_000, 500);
      const s3 = s3Of(stack);
      const keys = photos.map((p) => `photos/${p.name}`);
      await Promise.all(photos.map((p, i) => s3.send(new PutObjectCommand({ Bucket: 'images', Key: keys[i], Body: p.bytes }))));
      await settled(stack, photos.length, 'v1');
      const manifest = ModelManifestSchema.parse(
        JSON.parse(await (await s3.send(new GetObjectCommand({ Bucket: 'artifacts', Key: 'models/v1/manifest.json' }))).Body!.transformToString()),
      );
      const onnx = Buffer.from(
        await (await s3.send(new GetObjectCommand({ Bucket: 'artifacts', Key: 'models/v1/encoder.onnx' }))).Body!.transformToByteArray(),
      );
      s3.destroy();
      const encoder = await OnnxEncoder.create(manifest, onnx);
      const spec = manifest.input;
      const embed = async (px: Buffer) => (await encoder.embed([toModelInput(px, spec)]))[0]!;
      const cos = (a: Float32Array, b: Float32Array) => 1 - a.reduce((s, v, i) => s + v * b[i]!, 0);
      const rows = [];
      for (const [i, p] of photos.entries()) {
        const res = await fetch(`${stack.api}/search?k=5`, { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: p.bytes });
        const body = (await res.json()) as { neighbors: Array<{ key: string; distance: number }> };
        const rank = body.neighbors.findIndex((n) => n.key === keys[i]) + 1;
        const decoded = await decodeImage(p.bytes, { maxPixels: 1e8, maxSide: 1024 });
        const one = await embed(await canonicalize(decoded, spec));
        const two = await embed(await modelPixels((await decodeToWorking(p.bytes, 1e8, DEFAULT_DERIVED)).working, spec));
        const t32 = await canonicalize(decoded, { ...spec, height: 32, width: 32 });
        const thumb = await embed(await canonicalize({ width: 32, height: 32, rgb: t32, format: 'raw' }, spec));
        rows.push({
          photo: `${p.name} ${p.width}x${p.height}`,
          selfRank: rank,
          searchDistance: body.neighbors[rank - 1]?.distance ?? null,
          twoStepVsOneStep: round(cos(one, two), 6),
          thumbnail32VsOneStep: round(cos(one, thumb), 6),
          nearestOtherDistance: body.neighbors.find((n) => n.key !== keys[i])?.distance ?? null,
        });
      }
      console.table(rows);
      result.photos = { source, encoder: 'scripts/make-encoder.py detail (128x128, 4x4 zero-mean patches, tanh, dense projection)', rows };
    } finally {
      await stack.stop();
    }
  }

  // ---- Fashion-MNIST: agreement from the first query, then a warm-started run ----------------
  if (!only || only === 'fashion') {
    const count = ctx.quick ? 100 : Number(flag(ctx.args, 'images') ?? '1000');
    const seconds = ctx.quick ? '10' : (flag(ctx.args, 'seconds') ?? '120');
    const minutes = ctx.quick ? 1 : Number(flag(ctx.args, 'minutes') ?? '3');
    const fm = loadFashionMnist('t10k', count);
    const keys = fm.images.map((_, i) => `fm/${pngName('t10k', i)}`);
    const labelOf = new Map(keys.map((k, i) => [k, fm.labels[i]!]));
    const stack = await startStackProcess(join(work, 'fashion'), { RETRAIN_MIN_NEW_LABELS: '0' });
    try {
      const s3 = s3Of(stack);
      for (let i = 0; i < count; i += 50) {
        await Promise.all(
          keys.slice(i, i + 50).map(async (Key, j) => s3.send(new PutObjectCommand({ Bucket: 'images', Key, Body: await toPng(fm.images[i + j]!) }))),
        );
      }
      s3.destroy();
      await settled(stack, count, 'v0');
      const agreement = async () => {
        let same = 0;
        let total = 0;
        for (const key of keys) {
          const { body } = await getJson<{ neighbors: Array<{ key: string }> }>(`${stack.api}/neighbors?key=${encodeURIComponent(key)}&k=10`);
          for (const n of body.neighbors) {
            same += labelOf.get(n.key) === labelOf.get(key) ? 1 : 0;
            total += 1;
          }
        }
        return round(same / total, 4);
      };
      const v0 = await agreement();
      const raw = round(rawPixelAgreement(fm.images, fm.labels, 10), 4);
      const onnxPath = join(work, 'fashion.onnx');
      const weightsPath = join(work, 'fashion.pt');
      const standIn = makeEncoder(['fashion', '--size', '64', '--seconds', seconds, '--out', onnxPath, '--weights-out', weightsPath]);
      const t0 = Date.now();
      if ((await runCli(importArgs(stack, onnxPath, 64, weightsPath))) !== 0) throw new Error('import failed');
      await settled(stack, count, 'v1');
      const importSeconds = round((Date.now() - t0) / 1000, 1);
      const imported = await agreement();
      if (ctx.quick) {
        // Quick (CI): only shows the path still runs; the warm-started run is left to the full benchmark and the e2e test.
        result.fashion = { images: count, agreementAt10: { rawPixels: raw, v0RandomInit: v0, imported }, standIn };
        writeResult(ctx, 'own-encoder', result);
        return;
      }
      // 10 labels per class from the corpus, then one run: it continues from the import, behind the gate.
      const perClass = new Map<number, number>();
      const labels = keys.filter((k) => {
        const c = labelOf.get(k)!;
        perClass.set(c, (perClass.get(c) ?? 0) + 1);
        return perClass.get(c)! <= 10;
      });
      await fetch(`${stack.api}/labels`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ labels: labels.map((key) => ({ key, label: `class-${labelOf.get(key)}` })) }),
      });
      const started = (await (
        await fetch(`${stack.api}/train`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ maxMinutes: minutes }) })
      ).json()) as {
        jobId: string;
      };
      const run = await waitFor(
        'training run',
        async () => {
          const runs = (
            await getJson<{ runs: Array<{ jobId: string; state: string; version?: string; gate?: { passed: boolean; rule?: string; reasons: string[] } }> }>(
              `${stack.api}/models`,
            )
          ).body.runs;
          const r = runs.find((x) => x.jobId === started.jobId);
          return r && r.state !== 'running' ? r : undefined;
        },
        (minutes + 10) * 60_000,
        2000,
      );
      if (run.state === 'published') await settled(stack, count, run.version);
      const after = await agreement();
      const h = await health(stack);
      result.fashion = {
        images: count,
        agreementAt10: { rawPixels: raw, v0RandomInit: v0, imported, afterWarmStartedRun: after },
        standIn: standIn,
        importToServingSeconds: importSeconds,
        run: { state: run.state, version: run.version, servingAfter: h.servingModel, gateRule: run.gate?.rule, gateReasons: run.gate?.reasons },
        labels: labels.length,
      };
      console.log(`  fashion ${JSON.stringify(result.fashion)}`);
    } finally {
      await stack.stop();
    }
  }
  writeResult(ctx, only ? `own-encoder-${only}` : 'own-encoder', result, 'own-encoder');
}

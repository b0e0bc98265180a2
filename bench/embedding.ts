/**
 * Embedding: onnxruntime-node (the production adapter, OnnxEncoder) against PyTorch eager on CPU,
 * the same encoder, batch 1, 8, 32 and 128: images/s and p50 latency, and the ratio. Cold start:
 * process start to first embedding, for the esbuild-bundled embed path and for PyTorch.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { OnnxEncoder } from '../shared/adapters/onnx-encoder';
import { ModelManifestSchema } from '../shared/schemas';
import { type BenchContext, ROOT, round, summarize, writeResult, pythonJson } from './lib/common';

export async function embeddingBench(ctx: BenchContext): Promise<void> {
  const batches = [1, 8, 32, 128];
  const seconds = ctx.quick ? 0.2 : 3;
  const dir = mkdtempSync(join(tmpdir(), 'bench-embed-'));
  const torch = pythonJson([
    'bench/embed_torch.py',
    '--out-dir',
    dir,
    '--batches',
    batches.join(','),
    '--seconds',
    String(seconds),
    '--cold-runs',
    ctx.quick ? '1' : '5',
  ]);

  const manifest = ModelManifestSchema.parse(JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')));
  const encoder = await OnnxEncoder.create(manifest, readFileSync(join(dir, 'encoder.onnx')));
  const size = manifest.input.channels * manifest.input.height * manifest.input.width;
  const ort: Record<string, { imagesPerSecond: number; p50LatencyMs: number; p99LatencyMs: number; calls: number }> = {};
  for (const b of batches) {
    const inputs = Array.from({ length: b }, () => Float32Array.from({ length: size }, () => Math.random()));
    for (let i = 0; i < 3; i += 1) await encoder.embed(inputs);
    const times: number[] = [];
    const deadline = performance.now() + seconds * 1000;
    while (performance.now() < deadline || times.length < 5) {
      const t0 = performance.now();
      await encoder.embed(inputs);
      times.push(performance.now() - t0);
    }
    const s = summarize(times);
    ort[String(b)] = { imagesPerSecond: round((b * 1000) / s.meanMs, 1), p50LatencyMs: s.p50Ms, p99LatencyMs: s.p99Ms, calls: s.n };
  }

  // Cold start of the bundled embed path (what a Lambda cold start runs before its first inference).
  const bundle = join(dir, 'cold-start.cjs');
  await build({
    entryPoints: [join(ROOT, 'bench', 'cold-start-entry.ts')],
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    outfile: bundle,
    external: ['onnxruntime-node', 'sharp'],
    logLevel: 'error',
  });
  const cold: Array<{ wallMs: number; modulesLoadedMs: number; sessionCreatedMs: number; firstEmbeddingMs: number }> = [];
  for (let i = 0; i < (ctx.quick ? 1 : 5); i += 1) {
    const t0 = performance.now();
    const res = spawnSync(process.execPath, [bundle, dir], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, NODE_PATH: join(ROOT, 'node_modules') } });
    const wallMs = performance.now() - t0;
    if (res.status !== 0) throw new Error(`cold start run failed: ${res.stderr}`);
    cold.push({ wallMs: round(wallMs, 1), ...JSON.parse(res.stdout.trim()) });
  }

  const ratio = Object.fromEntries(batches.map((b) => [String(b), round(ort[String(b)]!.imagesPerSecond / torch.torchEager[String(b)].imagesPerSecond, 2)]));
  const rows = batches.map(
    (b) =>
      `  batch ${String(b).padStart(3)}: onnxruntime-node ${ort[String(b)]!.imagesPerSecond} img/s (p50 ${ort[String(b)]!.p50LatencyMs} ms) vs torch eager ${torch.torchEager[String(b)].imagesPerSecond} img/s (p50 ${torch.torchEager[String(b)].p50LatencyMs} ms): ${ratio[String(b)]}x`,
  );
  console.log(rows.join('\n'));
  const coldMedian = [...cold].sort((a, b) => a.wallMs - b.wallMs)[Math.floor(cold.length / 2)]!;
  const torchCold = [...torch.coldStartMs.processToFirstEmbedding].sort((a: number, b: number) => a - b)[
    Math.floor(torch.coldStartMs.processToFirstEmbedding.length / 2)
  ];
  console.log(`  cold start to first embedding: bundled onnxruntime-node ${coldMedian.wallMs} ms (median of ${cold.length}), PyTorch ${torchCold} ms`);
  writeResult(ctx, 'embedding', {
    encoder: { input: torch.input, embeddingDim: manifest.encoder.embeddingDim, architecture: manifest.encoder.architecture },
    threads: { torch: torch.threads, onnxruntime: 'default (one per core)' },
    torchVersion: torch.torchVersion,
    onnxruntimeNode: ort,
    torchEager: torch.torchEager,
    torchEagerChannelsLast: torch.torchEagerChannelsLast,
    ratioOrtOverTorchEager: ratio,
    target: { ratio: 1.5, met: Object.values(ratio).every((r) => r >= 1.5) },
    coldStart: { bundledOnnxRuntimeNode: cold, torch: torch.coldStartMs },
  });
}

/**
 * `npm run bench [-- <name>...] [--quick]`: runs benchmarks (all by default) and writes their JSON
 * under bench/results/ (`--quick`: `<name>-quick.json`, git-ignored). Summarised in docs/BENCHMARKS.md.
 *
 *   embedding  onnxruntime-node vs PyTorch eager on CPU, batch 1/8/32/128; cold start
 *   pipeline   embedded-stack ingest vs a bare decode/resize/infer loop; CPU per image; profile
 *   latency    upload-to-searchable p50/p99
 *   query      the index's exact scan at 10k/100k/1M vectors vs a Float32Array scan and usearch HNSW (--sizes)
 *   scale      the stack through a 100k-image ingest (RSS sampled, bytes per image by kind) and a rollout of all of them (--images)
 *   trainer-data  the trainer's data path at 10k and 100k images: peak RSS and images/s, streamed from disk vs resident (--images, --seconds)
 *   ann        the index at 150k and 1M real-encoder vectors: HNSW recall@10 and latency, build time, label filters (--vectors, --queries)
 *   http       GET /neighbors under wrk, 16 connections (--seconds, default 60)
 *   loader     SimCLR step: device-side batched augmentation vs a CPU-augmenting DataLoader (--seconds)
 *   trainer    learning quality on Fashion-MNIST: kNN, linear probe, pseudo-labels vs raw pixels (--minutes, --preset)
 *   s3-upload  embedded S3 server peak memory through a 1 GiB single PUT and a 1 GiB CLI multipart upload (--mib)
 *   presets    each trainer preset's SimCLR step: images/s, step time, peak memory, FLOPs; MFU on CUDA (BENCH_DEVICE=cuda, --steps)
 *   aws-cost   dollars per million images ingested, queries and rollout re-embeddings, from the AWS harness's recorded calls (--images, --queries)
 *   derived-format  bytes and time per image of the stored canonical image's and views' formats, on ordinary photos
 *   own-encoder     imported encoders: Fashion-MNIST agreement (v0, raw pixels, imported, after a warm-started run; --images, --seconds, --minutes) and photos' stored vs original vectors
 *
 * --quick runs every benchmark small enough for CI, only to show it still runs; its numbers mean nothing.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { annBench } from './ann';
import { scaleBench } from './scale';
import { trainerDataBench } from './trainer-data';
import { awsCostBench } from './aws-cost';
import { derivedFormatBench, ownEncoderBench } from './own-encoder';
import { embeddingBench } from './embedding';
import { type BenchContext, flag, PYTHON, pythonJson, ROOT, writeResult } from './lib/common';
import { queryBench } from './query';
import { httpBench, latencyBench, pipelineBench } from './stack';
import { measureUploadMemory } from '../test/support/s3-upload-memory';

const benches: Record<string, (ctx: BenchContext) => Promise<void>> = {
  's3-upload': async (ctx) => {
    const r = await measureUploadMemory(Number(flag(ctx.args, 'mib') ?? (ctx.quick ? '64' : '1024')));
    console.log(
      `  ${r.mib} MiB: server peak RSS ${r.baselinePeakRssMiB} MiB at start, ${r.singlePut.peakRssMiB} MiB after a single PUT (${r.singlePut.mibPerSecond} MiB/s), ${r.multipartCli.peakRssMiB} MiB after an AWS CLI multipart upload (${r.multipartCli.mibPerSecond} MiB/s)`,
    );
    writeResult(ctx, 's3-upload', { ...r });
  },
  'aws-cost': awsCostBench,
  ann: annBench,
  scale: scaleBench,
  'trainer-data': trainerDataBench,
  'derived-format': derivedFormatBench,
  'own-encoder': ownEncoderBench,
  embedding: embeddingBench,
  pipeline: pipelineBench,
  latency: latencyBench,
  query: queryBench,
  http: httpBench,
  loader: async (ctx) => {
    const seconds = flag(ctx.args, 'seconds') ?? '60';
    const r = pythonJson([
      'bench/loader_bench.py',
      ...(ctx.quick ? ['--quick'] : ['--seconds', seconds, ...(process.env.BENCH_DEVICE ? ['--device', process.env.BENCH_DEVICE] : [])]),
    ]);
    console.log(
      `  SimCLR step on ${r.device}: device-side augmentation ${r.deviceSideAugmentation.imagesPerSecond} img/s vs DataLoader ${r.dataLoaderCpuAugmentation.imagesPerSecond} img/s (${r.speedup}x); ${r.flopsPerImage} FLOPs/image, ${r.achievedTflops} TFLOP/s`,
    );
    writeResult(ctx, r.device === 'cpu' ? 'loader-cpu' : 'loader-gpu', r, 'loader');
  },
  presets: async (ctx) => {
    const device = process.env.BENCH_DEVICE ?? 'cpu';
    const r = pythonJson(['bench/presets_bench.py', '--device', device, ...(ctx.quick ? ['--quick'] : ['--steps', flag(ctx.args, 'steps') ?? '5'])]);
    writeResult(ctx, `presets-${device}`, r, 'presets');
  },
  trainer: async (ctx) => {
    const minutes = flag(ctx.args, 'minutes') ?? (ctx.quick ? '0.5' : '20');
    const preset = flag(ctx.args, 'preset');
    const name = `trainer-${process.env.BENCH_DEVICE ?? 'cpu'}${preset ? `-${preset}` : ''}`;
    const out = join(ROOT, 'bench', 'results', ctx.quick ? 'trainer-quick.json' : `${name}.json`);
    const res = spawnSync(
      PYTHON,
      ['bench/trainer_bench.py', '--minutes', minutes, '--out', out, ...(preset ? ['--preset', preset] : []), ...(ctx.quick ? ['--quick'] : [])],
      {
        cwd: ROOT,
        stdio: 'inherit',
      },
    );
    if (res.status !== 0) throw new Error(`trainer_bench.py exited with ${res.status}`);
  },
};

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const quick = argv.includes('--quick');
  const names = argv.filter((a, i) => !a.startsWith('--') && !(i > 0 && argv[i - 1]!.startsWith('--') && argv[i - 1] !== '--quick'));
  const selected = names.length > 0 ? names : Object.keys(benches);
  const unknown = selected.filter((n) => !benches[n]);
  if (unknown.length > 0) {
    console.error(`unknown benchmark ${unknown.map((u) => `"${u}"`).join(', ')}; available: ${Object.keys(benches).join(', ')}`);
    return 2;
  }
  const args = argv.filter((a) => !selected.includes(a));
  let failed = 0;
  for (const name of selected) {
    console.log(`[bench] ${name}${quick ? ' (quick)' : ''}`);
    const t0 = Date.now();
    try {
      await benches[name]!({ quick, args });
      console.log(`[bench] ${name} done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    } catch (err) {
      failed += 1;
      console.error(`[bench] ${name} FAILED: ${(err as Error).stack ?? err}`);
    }
  }
  return failed ? 1 : 0;
}

void main().then((code) => process.exit(code));

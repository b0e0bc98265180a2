/**
 * Benchmarks of the embedded stack, run as a user runs it (`tsx local/main.ts`, a separate process):
 *
 *   pipeline  end-to-end ingest images/s (S3 PUT -> searchable) against a bare loop doing the same
 *             decode, resize, views and inference in one process with no queue or storage; CPU time
 *             per image of both; where the stack's main thread spends its time (V8 CPU profile)
 *   latency   upload-to-searchable p50/p99, one image at a time on an idle stack
 *   http      GET /neighbors under wrk (16 connections), QPS, p50/p99, errors, RSS before/after
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { OnnxEncoder } from '../shared/adapters/onnx-encoder';
import { S3ObjectStore } from '../shared/adapters/s3-object-store';
import { renderViews } from '../shared/image/augment-views';
import { DEFAULT_DERIVED, decodeToWorking, encodeCanonical, encodeThumbnail, modelPixels, packViews, viewSideFor } from '../shared/derived-layout';
import { toModelInput } from '../shared/image/tensor';
import { ModelManifestSchema, ModelPointerSchema, type ModelManifest } from '../shared/schemas';
import { loadFashionMnist, pngName, toPng } from '../scripts/fashion-mnist';
import { getJson, startStackProcess, waitFor, type StackProcess } from '../test/support/stack-process';
import { localS3Client } from '../local/s3-client';
import { type BenchContext, flag, round, summarize, writeResult } from './lib/common';
import { rssMb, wrkNeighbors } from './lib/wrk';

async function pngsOf(count: number, offset = 0): Promise<{ keys: string[]; pngs: Buffer[] }> {
  const fm = loadFashionMnist('train', count, offset);
  return { keys: fm.images.map((_, i) => `bench/${pngName('train', offset + i)}`), pngs: await Promise.all(fm.images.map((px) => toPng(px))) };
}

async function upload(stack: StackProcess, keys: string[], pngs: Buffer[], concurrency: number): Promise<void> {
  const s3 = new S3Client({ endpoint: stack.s3, forcePathStyle: true, region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < keys.length) {
        const i = next++;
        await s3.send(new PutObjectCommand({ Bucket: 'images', Key: keys[i], Body: pngs[i], ContentType: 'image/png' }));
      }
    }),
  );
  s3.destroy();
}

async function waitIndexed(api: string, count: number, timeoutMs: number, intervalMs = 50): Promise<void> {
  await waitFor(
    `${count} indexed`,
    async () => {
      const h = (await getJson<{ indexed: number; pending: number }>(`${api}/health`)).body;
      return h.indexed >= count && h.pending === 0 ? true : undefined;
    },
    timeoutMs,
    intervalMs,
  );
}

/** CPU time (user + system) of a process in ms, from /proc (clock ticks of 10 ms). */
function processCpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

async function servingModel(s3Endpoint: string): Promise<{ manifest: ModelManifest; onnx: Buffer }> {
  const client = localS3Client(s3Endpoint);
  const store = new S3ObjectStore(client);
  const pointer = ModelPointerSchema.parse(JSON.parse((await store.get('artifacts', 'models/serving.json'))!.toString()));
  const manifest = ModelManifestSchema.parse(JSON.parse((await store.get('artifacts', `models/${pointer.version}/manifest.json`))!.toString()));
  const onnx = (await store.get('artifacts', `models/${pointer.version}/encoder.onnx`))!;
  client.destroy();
  return { manifest, onnx };
}

/** The ceiling: the same per-image work in one process, batches of 32 as the embed worker takes them. */
async function bareLoop(pngs: Buffer[], model: { manifest: ModelManifest; onnx: Buffer }, views: number) {
  const encoder = await OnnxEncoder.create(model.manifest, model.onnx);
  const spec = model.manifest.input;
  const stages = { decode: 0, canonicalize: 0, views: 0, encode: 0, inference: 0 };
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < pngs.length; i += 32) {
    const batch = pngs.slice(i, i + 32);
    let t = performance.now();
    const images = await Promise.all(batch.map((b) => decodeToWorking(b, 1e8, DEFAULT_DERIVED)));
    stages.decode += performance.now() - t;
    t = performance.now();
    const canon = await Promise.all(images.map((im) => modelPixels(im.working, spec)));
    stages.canonicalize += performance.now() - t;
    t = performance.now();
    const sides = images.map((im) => viewSideFor(im.working, DEFAULT_DERIVED.viewSize));
    const rendered = await Promise.all(images.map((im, j) => renderViews(im.decoded, { side: sides[j]! }, views, `${i + j}`)));
    stages.views += performance.now() - t;
    t = performance.now();
    await Promise.all(
      images.map((im, j) =>
        Promise.all([encodeCanonical(im.working), views > 0 ? packViews(rendered[j]!, sides[j]!) : undefined, encodeThumbnail(im.working)]),
      ),
    );
    stages.encode += performance.now() - t;
    t = performance.now();
    await encoder.embed(canon.map((c) => toModelInput(c, spec)));
    stages.inference += performance.now() - t;
  }
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return {
    imagesPerSecond: round((pngs.length * 1000) / wallMs, 1),
    wallSeconds: round(wallMs / 1000, 2),
    cpuMsPerImage: round((cpu.user + cpu.system) / 1000 / pngs.length, 3),
    stageShare: Object.fromEntries(Object.entries(stages).map(([k, v]) => [k, round(v / wallMs, 3)])),
    stageMsPerImage: Object.fromEntries(Object.entries(stages).map(([k, v]) => [k, round(v / pngs.length, 3)])),
  };
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
}

/** Self time of the main thread by area, from a V8 .cpuprofile. */
function profileByArea(file: string): Record<string, number> {
  const prof = JSON.parse(readFileSync(file, 'utf8')) as { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] };
  const areaOf = new Map<number, string>();
  for (const n of prof.nodes) {
    const { url, functionName } = n.callFrame;
    const area =
      functionName === '(idle)'
        ? 'idle (waiting on I/O, fsync, threadpool)'
        : functionName === '(garbage collector)'
          ? 'garbage collection'
          : functionName === '(program)'
            ? 'native (V8/libuv outside JS)'
            : /local\/s3-server/.test(url)
              ? 'S3 server (local/s3-server.ts)'
              : /local-queue|append-log|queue-worker/.test(url)
                ? 'queues and journals'
                : /@aws-sdk|@smithy/.test(url)
                  ? 'AWS SDK clients'
                  : /@aws-lambda-powertools/.test(url)
                    ? 'Powertools (batch, logger, parser)'
                    : /node_modules\/sharp/.test(url)
                      ? 'sharp (JS side)'
                      : /onnxruntime/.test(url)
                        ? 'onnxruntime-node (JS side)'
                        : /local-vector-index/.test(url)
                          ? 'vector index'
                          : /node_modules\/zod/.test(url)
                            ? 'zod validation'
                            : /^node:|^internal|^$/.test(url)
                              ? 'Node.js internals (http, fs, streams, crypto)'
                              : /node_modules\/tsx|esbuild/.test(url)
                                ? 'tsx loader'
                                : 'pipeline code (use cases, adapters)';
    areaOf.set(n.id, area);
  }
  const totals: Record<string, number> = {};
  let all = 0;
  prof.samples.forEach((id, i) => {
    const dt = prof.timeDeltas[i] ?? 0;
    const a = areaOf.get(id) ?? 'other';
    totals[a] = (totals[a] ?? 0) + dt;
    all += dt;
  });
  return Object.fromEntries(
    Object.entries(totals)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => [k, round(v / all, 3)]),
  );
}

interface IngestRun {
  imagesPerSecond: number;
  wallSeconds: number;
  uploadSeconds: number;
  cpuMsPerImage: number;
  /** CPU of this process while it uploads (the AWS SDK client) and polls: it shares the machine with the stack. */
  uploaderCpuMsPerImage: number;
}

/**
 * A fresh stack ingests `pngs` through the S3 API (8 uploads at a time) until every image is
 * searchable; with `profile`, under V8's CPU profiler, and where its main thread spent its time.
 */
async function ingestRun(
  keys: string[],
  pngs: Buffer[],
  warm: { keys: string[]; pngs: Buffer[] },
  profile = false,
): Promise<IngestRun & { mainThread?: Record<string, number> }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-pipeline-'));
  const profDir = join(dataDir, 'profile');
  try {
    const stack = await startStackProcess(dataDir, {}, profile ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : []);
    let run: IngestRun;
    try {
      // Other images first, untimed: the measured ingest is the stack's steady state, not its first
      // seconds (V8 compiling the code, the queues and journals starting), as the bare loop's is.
      if (warm.keys.length > 0) {
        await upload(stack, warm.keys, warm.pngs, 8);
        await waitIndexed(stack.api, warm.keys.length, 600_000, 25);
      }
      const cpu0 = processCpuMs(stack.pid);
      const own0 = process.cpuUsage();
      const t0 = performance.now();
      await upload(stack, keys, pngs, 8);
      const uploadedMs = performance.now() - t0;
      await waitIndexed(stack.api, warm.keys.length + keys.length, 600_000, 25);
      const wallMs = performance.now() - t0;
      const cpuMs = processCpuMs(stack.pid) - cpu0;
      const own = process.cpuUsage(own0);
      run = {
        imagesPerSecond: round((keys.length * 1000) / wallMs, 1),
        wallSeconds: round(wallMs / 1000, 2),
        uploadSeconds: round(uploadedMs / 1000, 2),
        cpuMsPerImage: round(cpuMs / keys.length, 3),
        uploaderCpuMsPerImage: round((own.user + own.system) / 1000 / keys.length, 3),
      };
    } finally {
      await stack.stop(); // the profile is written on exit
    }
    const largest = existsSync(profDir)
      ? readdirSync(profDir)
          .map((f) => join(profDir, f))
          .sort((a, b) => statSync(b).size - statSync(a).size)[0]
      : undefined;
    return { ...run, ...(largest ? { mainThread: profileByArea(largest) } : {}) };
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/**
 * Rounds of (bare loop, ingest by a fresh stack), then the bare loop once more, so every ingest is
 * bracketed by the ceiling measured just before and after it on the same machine. The ratio is the
 * mean ingest rate over the mean bare-loop rate. The V8 CPU profile comes from one more ingest of
 * its own: the sampling profiler costs the stack CPU, so the measured rounds run without it.
 */
export async function pipelineBench(ctx: BenchContext): Promise<void> {
  const count = Number(flag(ctx.args, 'count') ?? (ctx.quick ? 40 : 2000));
  const rounds = Number(flag(ctx.args, 'rounds') ?? (ctx.quick ? 1 : 2));
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds must be a positive integer, got ${flag(ctx.args, 'rounds')}`);
  const warmCount = Number(flag(ctx.args, 'warm') ?? (ctx.quick ? 10 : 300));
  if (!Number.isInteger(warmCount) || warmCount < 0) throw new Error(`--warm must be a whole number of images, got ${flag(ctx.args, 'warm')}`);
  const { keys, pngs } = await pngsOf(count);
  // The images after the measured ones: other keys, so the stack counts them apart.
  const warm = await pngsOf(warmCount, count);
  const model = await servingModelOfFreshStack();
  // The bare loop's warm-up, untimed, on the same images as the stack's.
  if (warmCount > 0) await bareLoop(warm.pngs, model, 2);
  const bareRuns: Array<Awaited<ReturnType<typeof bareLoop>>> = [];
  const ingests: IngestRun[] = [];
  for (let r = 0; r < rounds; r += 1) {
    bareRuns.push(await bareLoop(pngs, model, 2));
    const run = await ingestRun(keys, pngs, warm);
    ingests.push(run);
    console.log(`  round ${r + 1}: bare loop ${bareRuns[r]!.imagesPerSecond} img/s, pipeline ${run.imagesPerSecond} img/s (${run.cpuMsPerImage} CPU-ms/image)`);
  }
  bareRuns.push(await bareLoop(pngs, model, 2));
  const profiled = ctx.quick ? undefined : await ingestRun(keys, pngs, warm, true);
  const pipeline = {
    imagesPerSecond: round(mean(ingests.map((r) => r.imagesPerSecond)), 1),
    cpuMsPerImage: round(mean(ingests.map((r) => r.cpuMsPerImage)), 3),
    runs: ingests,
  };
  const last = bareRuns[bareRuns.length - 1]!;
  const bare = {
    ...last,
    imagesPerSecond: round(mean(bareRuns.map((r) => r.imagesPerSecond)), 1),
    cpuMsPerImage: round(mean(bareRuns.map((r) => r.cpuMsPerImage)), 3),
    runs: bareRuns.map((r) => r.imagesPerSecond),
  };
  const ratio = round(pipeline.imagesPerSecond / bare.imagesPerSecond, 3);
  const cpuRatio = round(pipeline.cpuMsPerImage / bare.cpuMsPerImage, 3);
  console.log(
    `  ${count} images, ${rounds} rounds: pipeline ${pipeline.imagesPerSecond} img/s (${pipeline.cpuMsPerImage} CPU-ms/image) vs bare loop ${bare.imagesPerSecond} img/s (${bare.cpuMsPerImage} CPU-ms/image): ratio ${ratio}, CPU ${cpuRatio}x`,
  );
  if (profiled)
    console.log(
      `  profiled ingest: ${profiled.imagesPerSecond} img/s (${profiled.cpuMsPerImage} CPU-ms/image); main thread: ${JSON.stringify(profiled.mainThread)}`,
    );
  writeResult(ctx, 'pipeline', {
    images: count,
    rounds,
    warmImages: warmCount,
    warmUp: 'each stack ingests warmImages other images first, untimed, and the bare loop runs once on them before its first timed run',
    image: 'Fashion-MNIST train PNG, 28x28 gray, about 0.3 KB',
    augmentViews: 2,
    uploadConcurrency: 8,
    pipeline,
    bareLoop: bare,
    ratioPipelineOverBare: ratio,
    cpuRatioPipelineOverBare: cpuRatio,
    target: { ratio: 0.8, cpuRatio: 1.25, met: ratio >= 0.8 && cpuRatio <= 1.25 },
    profiledIngest: profiled,
  });
}

/** The serving model a fresh stack starts with (the bare loop embeds with the same one). */
async function servingModelOfFreshStack(): Promise<{ manifest: ModelManifest; onnx: Buffer }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-pipeline-model-'));
  const stack = await startStackProcess(dataDir);
  try {
    return await servingModel(stack.s3);
  } finally {
    await stack.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

export async function latencyBench(ctx: BenchContext): Promise<void> {
  const count = ctx.quick ? 5 : Number(flag(ctx.args, 'count') ?? 200);
  const { keys, pngs } = await pngsOf(count + 10, 50_000);
  const stack = await startStackProcess(mkdtempSync(join(tmpdir(), 'bench-latency-')));
  const samples: number[] = [];
  try {
    const s3 = new S3Client({ endpoint: stack.s3, forcePathStyle: true, region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
    for (let i = 0; i < count + 10; i += 1) {
      const key = keys[i]!;
      const t0 = performance.now();
      await s3.send(new PutObjectCommand({ Bucket: 'images', Key: key, Body: pngs[i], ContentType: 'image/png' }));
      // Searchable = its vector is in the serving index, which is what GET /images reports as indexed.
      await waitFor(
        `${key} searchable`,
        async () => ((await getJson<{ state: string }>(`${stack.api}/images?key=${encodeURIComponent(key)}`)).body.state === 'indexed' ? true : undefined),
        30_000,
        2,
      );
      if (i >= 10) samples.push(performance.now() - t0); // the first 10 warm the containers
      await new Promise((r) => setTimeout(r, 20));
    }
    s3.destroy();
  } finally {
    await stack.stop();
  }
  const s = summarize(samples);
  console.log(`  upload-to-searchable over ${s.n} single uploads: p50 ${s.p50Ms} ms, p99 ${s.p99Ms} ms`);
  writeResult(ctx, 'latency', {
    uploads: s.n,
    measure: 'PutObject start -> GET /images?key= answers indexed (polled every 2 ms), one upload at a time, after 10 warm-up uploads',
    latency: s,
    target: { p50Ms: 500, met: s.p50Ms <= 500 },
  });
}

export async function httpBench(ctx: BenchContext): Promise<void> {
  const count = ctx.quick ? 50 : 1000;
  const seconds = ctx.quick ? 2 : Number(flag(ctx.args, 'seconds') ?? 60);
  const { keys, pngs } = await pngsOf(count, 20_000);
  const stack = await startStackProcess(mkdtempSync(join(tmpdir(), 'bench-http-')));
  try {
    await upload(stack, keys, pngs, 8);
    await waitIndexed(stack.api, count, 300_000);
    await wrkNeighbors(stack.api, keys, 16, ctx.quick ? 1 : 5); // warm-up
    const before = rssMb(stack.pid);
    const run = await wrkNeighbors(stack.api, keys, 16, seconds);
    const after = rssMb(stack.pid);
    console.log(
      `  GET /neighbors, ${count} vectors, wrk 16 connections ${seconds} s: ${run.requestsPerSecond} req/s, p50 ${run.latencyMs.p50} ms, p99 ${run.latencyMs.p99} ms, non-2xx ${run.non2xx}, socket errors ${JSON.stringify(run.socketErrors)}, RSS ${before.toFixed(0)} -> ${after.toFixed(0)} MB`,
    );
    writeResult(ctx, 'http', {
      vectors: count,
      route: 'GET /neighbors?k=10&key=<round robin>',
      wrk: run,
      rssMb: { before: round(before, 1), after: round(after, 1) },
    });
  } finally {
    await stack.stop();
  }
}

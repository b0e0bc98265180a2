/**
 * `npm run bench -- scale [--images 100000]`: the embedded stack through a large ingest and a rollout.
 *
 * The stack runs as a user runs it. Fashion-MNIST images go in through the S3 API, 16 at a time:
 * train and test splits, then mirrored copies past 70,000, so every key is a distinct picture. While
 * they go in, the stack process's RSS (and glibc's heaps within it) is sampled every 5 s, and its
 * growth per image is fitted, with and without the index's vectors. Afterwards the data directory's bytes
 * are counted per image, by kind: originals, derived files, records, index journals, queue journals
 * and the S3 server's own metadata. Then a new version (the serving encoder, imported again) is
 * rolled out, re-embedding every image, and its images/s are set against the ingest's. The RSS
 * curve is drawn as an SVG (docs/scale-rss-<images>.svg); the result is bench/results/scale-<images>.json.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import sharp from 'sharp';
import { localS3Client } from '../local/s3-client';
import { loadFashionMnist } from '../scripts/fashion-mnist';
import { importArgs } from '../test/support/encoders';
import { getJson, startStackProcess } from '../test/support/stack-process';
import { type BenchContext, flag, ROOT, round, slope, writeResult } from './lib/common';
import { glibcHeapsMiB } from './lib/smaps';
import { rssMb } from './lib/wrk';

const FM_TOTAL = 70_000;

let corpus: Uint8Array[] | undefined;

/** Image i: Fashion-MNIST's train then test images, mirrored past 70,000. */
async function fashionPng(i: number): Promise<Buffer> {
  corpus ??= [...loadFashionMnist('train').images, ...loadFashionMnist('t10k').images];
  const img = sharp(Buffer.from(corpus[i % FM_TOTAL]!), { raw: { width: 28, height: 28, channels: 1 } });
  return (i >= FM_TOTAL ? img.flop() : img).png().toBuffer();
}

/** Bytes of the files under `dir`: their sizes, and what the file system allocated for them (whole blocks). */
function du(dir: string): { size: number; allocated: number } {
  const total = { size: 0, allocated: 0 };
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      const sub = du(p);
      total.size += sub.size;
      total.allocated += sub.allocated;
    } else {
      const st = statSync(p);
      total.size += st.size;
      total.allocated += st.blocks * 512; // st.blocks counts 512-byte units
    }
  }
  return total;
}

async function objectBytes(s3: S3Client, bucket: string): Promise<Map<string, number>> {
  const byKind = new Map<string, number>();
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    for (const o of page.Contents ?? []) {
      const key = o.Key!;
      const kind = bucket === 'images' ? 'original' : key.startsWith('derived/') ? `derived ${key.split('/').pop()}` : key.split('/')[0]!;
      byKind.set(kind, (byKind.get(kind) ?? 0) + (o.Size ?? 0));
    }
    token = page.NextContinuationToken;
  } while (token);
  return byKind;
}

/**
 * A sample of the stack while it ingests: RSS, its anonymous part (heap and native allocations, not
 * mapped files), glibc's heaps within it, images indexed and messages queued.
 */
interface Sample {
  seconds: number;
  rssMiB: number;
  rssAnonMiB: number;
  mainHeapMiB: number;
  threadArenasMiB: number;
  indexed: number;
  pending: number;
}

/** A sample's RSS less the index's vectors: `vectorBytes` per image indexed (its own data, which grows with the images by design). */
function rssLessVectorsMiB(s: Sample, vectorBytes: number): number {
  return s.rssMiB - (s.indexed * vectorBytes) / 2 ** 20;
}

function svgPlot(samples: Sample[], title: string, vectorBytes: number): string {
  const W = 720;
  const H = 300;
  const pad = 50;
  const maxT = Math.max(...samples.map((s) => s.seconds), 1);
  const maxR = Math.max(...samples.map((s) => s.rssMiB), 1) * 1.1;
  const x = (t: number) => pad + ((W - 2 * pad) * t) / maxT;
  const y = (r: number) => H - pad - ((H - 2 * pad) * r) / maxR;
  const line = samples.map((s) => `${x(s.seconds).toFixed(1)},${y(s.rssMiB).toFixed(1)}`).join(' ');
  const withoutVectors = samples.map((s) => `${x(s.seconds).toFixed(1)},${y(rssLessVectorsMiB(s, vectorBytes)).toFixed(1)}`).join(' ');
  // Messages waiting in the stack's queues (uploads ahead of the ingest), on their own scale.
  const maxP = Math.max(...samples.map((s) => s.pending), 1);
  const yp = (p: number) => H - pad - ((H - 2 * pad) * p) / (maxP * 1.1);
  const queued = samples.map((s) => `${x(s.seconds).toFixed(1)},${yp(s.pending).toFixed(1)}`).join(' ');
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => {
    const r = Math.round(maxR * f);
    return `<text x="${pad - 6}" y="${y(r) + 4}" text-anchor="end" font-size="11">${r}</text><line x1="${pad}" x2="${W - pad}" y1="${y(r)}" y2="${y(r)}" stroke="#ddd"/>`;
  });
  const last = samples[samples.length - 1];
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif">
<text x="${W / 2}" y="18" text-anchor="middle" font-size="13">${title}</text>
${ticks.join('\n')}
<polyline fill="none" stroke="#bbb" stroke-width="1.5" stroke-dasharray="4 3" points="${queued}"/>
<polyline fill="none" stroke="#0b5cad" stroke-width="2" points="${line}"/>
<polyline fill="none" stroke="#c05a00" stroke-width="1.5" points="${withoutVectors}"/>
<text x="${W - pad}" y="36" text-anchor="end" font-size="11" fill="#0b5cad">stack RSS (MiB, left axis)</text>
<text x="${W - pad}" y="50" text-anchor="end" font-size="11" fill="#c05a00">RSS less the index's vectors (${vectorBytes} bytes per image indexed)</text>
<text x="${W - pad}" y="64" text-anchor="end" font-size="11" fill="#888">messages queued (dashed; at most ${maxP.toLocaleString()})</text>
<text x="${W / 2}" y="${H - 12}" text-anchor="middle" font-size="11">seconds since the first upload (${last?.indexed ?? 0} images indexed at the end)</text>
<text x="14" y="${H / 2}" transform="rotate(-90 14 ${H / 2})" text-anchor="middle" font-size="11">stack RSS (MiB)</text>
</svg>
`;
}

export async function scaleBench(ctx: BenchContext): Promise<void> {
  const images = Number(flag(ctx.args, 'images') ?? (ctx.quick ? '300' : '100000'));
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-scale-'));
  const stack = await startStackProcess(dataDir, { RETRAIN_MIN_NEW_LABELS: '0', RETRAIN_INTERVAL_MINUTES: '0', LIFECYCLE_INTERVAL_SECONDS: '1' });
  const s3 = localS3Client(stack.s3);
  const manifest = JSON.parse(await (await s3.send(new GetObjectCommand({ Bucket: 'artifacts', Key: 'models/v0/manifest.json' }))).Body!.transformToString());
  const vectorBytes = 4 * (manifest.encoder.embeddingDim as number);
  const samples: Sample[] = [];
  const t0 = performance.now();
  const health = async () => (await getJson<{ indexed: number; pending: number }>(`${stack.api}/health`)).body;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const h = await health();
      const heaps = glibcHeapsMiB(stack.pid);
      samples.push({
        seconds: round((performance.now() - t0) / 1000, 1),
        rssMiB: round(rssMb(stack.pid), 0),
        rssAnonMiB: round(rssMb(stack.pid, 'RssAnon'), 0),
        mainHeapMiB: round(heaps.mainHeapMiB, 0),
        threadArenasMiB: round(heaps.threadArenasMiB, 0),
        indexed: h.indexed,
        pending: h.pending,
      });
      await new Promise((r) => setTimeout(r, 5000));
    }
  })();
  try {
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < images) {
          const i = next++;
          await s3.send(
            new PutObjectCommand({ Bucket: 'images', Key: `fm/${String(i).padStart(6, '0')}.png`, Body: await fashionPng(i), ContentType: 'image/png' }),
          );
          if (i % 10_000 === 0) console.log(`  uploaded ${i.toLocaleString()}`);
        }
      }),
    );
    for (;;) {
      const h = await health();
      if (h.indexed >= images && h.pending === 0) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    const ingestSeconds = (performance.now() - t0) / 1000;
    sampling = false;
    await sampler;
    const ingest = { images, seconds: round(ingestSeconds, 1), imagesPerSecond: round(images / ingestSeconds, 1) };
    console.log(`  ingest: ${ingest.imagesPerSecond} images/s (${ingest.seconds} s)`);

    // Bytes per image by kind.
    const objects = new Map([...(await objectBytes(s3, 'images')), ...(await objectBytes(s3, 'artifacts'))]);
    const onDisk = { s3: du(join(dataDir, 's3')), vectors: du(join(dataDir, 'vectors')), queues: du(join(dataDir, 'queues')) };
    const objectTotal = [...objects.values()].reduce((a, b) => a + b, 0);
    const perImage = Object.fromEntries(
      [
        ...[...objects].map(([k, v]) => [k, v] as const),
        ['index journals', onDisk.vectors.size] as const,
        ['queue journals', onDisk.queues.size] as const,
        ['S3 server metadata and overhead', onDisk.s3.size - objectTotal] as const,
      ].map(([k, v]) => [k, round(v / images, 1)]),
    );
    console.log(`  bytes per image: ${JSON.stringify(perImage)}`);
    // What the data directory takes on disk: every file occupies whole file-system blocks.
    const allocatedPerImage = Object.fromEntries(Object.entries(onDisk).map(([k, v]) => [k, round(v.allocated / images, 1)]));
    console.log(`  allocated on disk per image: ${JSON.stringify(allocatedPerImage)}`);

    // A rollout of every image: the serving encoder imported again as the next version.
    const onnx = join(dataDir, 'again.onnx');
    writeFileSync(
      onnx,
      Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: 'artifacts', Key: 'models/v0/encoder.onnx' }))).Body!.transformToByteArray()),
    );
    const r0 = performance.now();
    const res = spawnSync(join(ROOT, 'node_modules/.bin/tsx'), ['cli/pipeline.ts', ...importArgs(stack, onnx, manifest.input.height), '--no-wait'], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    if (res.status !== 0) throw new Error(`import failed: ${res.stderr}${res.stdout}`);
    let backfillStart: number | undefined;
    for (;;) {
      const m = (
        await getJson<{ serving: { version: string }; candidate?: { version: string }; runs: Array<{ state: string; error?: string }> }>(`${stack.api}/models`)
      ).body;
      const failed = m.runs.find((r) => r.state === 'failed' || r.state === 'rejected');
      if (failed) throw new Error(`import did not publish: ${JSON.stringify(failed)}`);
      if (m.candidate && backfillStart === undefined) backfillStart = performance.now();
      if (m.serving.version === 'v1') break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    const backfillSeconds = (performance.now() - (backfillStart ?? r0)) / 1000;
    const rollout = {
      images,
      importSeconds: round(((backfillStart ?? r0) - r0) / 1000, 1),
      backfillSeconds: round(backfillSeconds, 1),
      imagesPerSecond: round(images / backfillSeconds, 1),
      againstIngest: round(images / backfillSeconds / ingest.imagesPerSecond, 2),
    };
    console.log(`  rollout: ${rollout.imagesPerSecond} images/s re-embedded (${rollout.againstIngest}x ingest)`);
    const rss = samples.map((s) => s.rssMiB);
    // Growth per image indexed, past the first 10,000 (start-up: caches, compiled code, the first blocks).
    const settled = samples.filter((s) => s.indexed >= Math.min(10_000, images / 10));
    // Null when the ingest was too short to fit a line (a --quick run).
    const bytesPerImage = (value: (s: Sample) => number) => (settled.length < 2 ? null : round(slope(settled.map((s) => [s.indexed, value(s) * 2 ** 20])), 0));
    const growth = {
      fromImages: settled[0]?.indexed ?? 0,
      rssBytesPerImage: bytesPerImage((s) => s.rssMiB),
      rssLessVectorsBytesPerImage: bytesPerImage((s) => rssLessVectorsMiB(s, vectorBytes)),
      vectorBytesPerImage: vectorBytes,
    };
    console.log(
      `  RSS growth from ${growth.fromImages} images: ${growth.rssBytesPerImage} bytes per image, ${growth.rssLessVectorsBytesPerImage} less the vectors`,
    );
    const result = {
      ingest,
      rss: { samples, minMiB: Math.min(...rss), maxMiB: Math.max(...rss), lastMiB: rss[rss.length - 1], growth },
      bytesPerImage: perImage,
      allocatedBytesPerImage: allocatedPerImage,
      rollout,
    };
    if (!ctx.quick)
      writeFileSync(
        join(ROOT, 'docs', `scale-rss-${images}.svg`),
        svgPlot(samples, `Embedded stack RSS while ${images.toLocaleString()} images are ingested (this machine)`, vectorBytes),
      );
    writeResult(ctx, `scale-${images}`, result, 'scale');
  } finally {
    sampling = false;
    s3.destroy();
    await stack.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/**
 * `npm run bench -- trainer-data [--images 10000,100000] [--seconds 60]`: the trainer's data path at
 * corpus sizes (bench/trainer_data_bench.py): peak memory and SimCLR images/s, streaming its rows
 * from local disk against the same rows resident in memory. One result per size:
 * bench/results/trainer-data-<images>.json.
 *
 * Each corpus is written once to an embedded S3 data directory under .cache/trainer-data (in
 * process, through the server's own durable storage) in layout 2: a 28 px canonical PNG of a
 * Fashion-MNIST image (train, then t10k, then the same shifted by a few pixels for more than 70k),
 * two shifted copies as its views strip, its meta, and 10 labels per class. The trainer then reads
 * it over HTTP from `scripts/local-s3.ts`, as it reads the embedded stack's.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { artifactKeys } from '../shared/artifact-keys';
import { DERIVED_LAYOUT_VERSION, encodeCanonical, packViews, viewStride } from '../shared/derived-layout';
import { imageIdForKey } from '../shared/ids';
import { LocalS3Server } from '../local/s3-server';
import { loadFashionMnist } from '../scripts/fashion-mnist';
import { type BenchContext, flag, pythonJson, ROOT, round, writeResult } from './lib/common';

const SIDE = 28;

function shifted(gray: Uint8Array, by: number): Buffer {
  const rgb = Buffer.alloc(SIDE * SIDE * 3);
  for (let y = 0; y < SIDE; y += 1) {
    for (let x = 0; x < SIDE; x += 1) {
      const v = gray[y * SIDE + ((x - by + SIDE * 4) % SIDE)]!;
      rgb.fill(v, (y * SIDE + x) * 3, (y * SIDE + x) * 3 + 3);
    }
  }
  return rgb;
}

async function populate(dataDir: string, count: number): Promise<void> {
  const marker = join(dataDir, 'populated.json');
  if (existsSync(marker)) return;
  rmSync(dataDir, { recursive: true, force: true });
  const server = await LocalS3Server.start({ dataDir, host: '127.0.0.1', port: 0, buckets: ['images', 'artifacts'] });
  const store = server.objectStore();
  const train = loadFashionMnist('train');
  const test = loadFashionMnist('t10k');
  const images = [...train.images, ...test.images];
  const labels = [...train.labels, ...test.labels];
  const labelled = new Map<number, number>();
  const started = Date.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < count) {
        const i = next++;
        const base = i % images.length;
        const extra = Math.floor(i / images.length) * 3; // beyond 70k: the same images, shifted
        const key = `corpus/${String(i).padStart(7, '0')}.png`;
        const imageId = imageIdForKey(key);
        const canonical = shifted(images[base]!, extra);
        const [png, strip] = await Promise.all([
          encodeCanonical({ width: SIDE, height: SIDE, rgb: canonical, format: 'raw' }),
          packViews([shifted(images[base]!, extra + 1), shifted(images[base]!, extra + 2)], SIDE),
        ]);
        const meta = {
          schemaVersion: DERIVED_LAYOUT_VERSION,
          key,
          imageId,
          etag: `bench${i}`,
          sequencer: '01',
          source: { width: SIDE, height: SIDE, format: 'png', bytes: png.length },
          working: { size: 256, viewSize: 224 },
          canonical: { file: 'canonical.png', width: SIDE, height: SIDE },
          views: { file: 'views.jpg', count: 2, size: SIDE, stride: viewStride(SIDE) },
          createdAt: new Date(0).toISOString(),
        };
        await Promise.all([
          store.put('artifacts', artifactKeys.derivedCanonical(imageId), png, 'image/png'),
          store.put('artifacts', artifactKeys.derivedViews(imageId), strip, 'image/jpeg'),
        ]);
        await store.put('artifacts', artifactKeys.derivedMeta(imageId), JSON.stringify(meta), 'application/json');
        const label = labels[base]!;
        if ((labelled.get(label) ?? 0) < 10) {
          labelled.set(label, (labelled.get(label) ?? 0) + 1);
          await store.put(
            'artifacts',
            artifactKeys.label(imageId),
            JSON.stringify({ key, label: `class-${label}`, at: new Date(0).toISOString() }),
            'application/json',
          );
        }
        if ((i + 1) % 10_000 === 0) console.log(`  [trainer-data] ${i + 1}/${count} images written (${Math.round((Date.now() - started) / 1000)} s)`);
      }
    }),
  );
  await server.close();
  writeFileSync(marker, JSON.stringify({ count }));
}

async function withS3<T>(dataDir: string, fn: (endpoint: string) => T): Promise<T> {
  const child = spawn(join(ROOT, 'node_modules/.bin/tsx'), ['scripts/local-s3.ts', '--data-dir', dataDir, '--port', '0'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  const endpoint = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /s3 ready (\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`local S3 server exited with ${code}: ${out}`)));
  });
  try {
    return fn(endpoint);
  } finally {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
}

export async function trainerDataBench(ctx: BenchContext): Promise<void> {
  const sizes = ctx.quick ? [300] : (flag(ctx.args, 'images') ?? '10000,100000').split(',').map(Number);
  const seconds = ctx.quick ? '2' : (flag(ctx.args, 'seconds') ?? '60');
  for (const count of sizes) {
    const runs: Record<string, unknown>[] = [];
    const dataDir = join(ROOT, '.cache', 'trainer-data', `s3-${count}`);
    mkdirSync(dataDir, { recursive: true });
    await populate(dataDir, count);
    const cache = mkdtempSync(join(ROOT, '.cache', 'trainer-data', `trainer-${count}-`));
    try {
      await withS3(dataDir, (endpoint) => {
        // The streaming path first, from a cold decode cache (its load time is the real one); then
        // the in-memory reference reads the decoded images from that cache.
        for (const mode of ['stream', 'memory']) {
          const r = pythonJson(['bench/trainer_data_bench.py', '--endpoint', endpoint, '--mode', mode, '--seconds', seconds, '--cache', cache]);
          console.log(
            `  ${count} images, ${mode}: ${r.imagesPerSecond} images/s (data wait ${round(100 * r.dataWaitShare, 1)}%), peak RSS ${r.peakRssMiB.atEnd} MiB (after load ${r.peakRssMiB.afterLoad}), corpus ${r.corpusMiB} MiB, load ${r.loadSeconds} s`,
          );
          runs.push(r);
        }
      });
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
    writeResult(
      ctx,
      `trainer-data-${count}`,
      {
        images: count,
        model: 'the trainer defaults (cpu-small: small-resnet at 32x32, batch 256)',
        data: 'Fashion-MNIST as layout-2 derived images: 28 px canonical PNG + 2 views, from the embedded S3 server over HTTP',
        runs,
      },
      'trainer-data',
    );
  }
}

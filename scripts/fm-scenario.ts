/**
 * Loads Fashion-MNIST into a running stack, as a user would: uploads train and test images through
 * S3 (keys `train/train-NNNNN.png`, `test/t10k-NNNNN.png`), waits until they are indexed, labels
 * some train images per class through PUT /labels, and can score retrieval and pseudo-labels
 * through the public API.
 *
 *   npx tsx scripts/fm-scenario.ts load --train 3000 --test 1000 --labels-per-class 10
 *   npx tsx scripts/fm-scenario.ts score --train 3000 --test 1000
 *
 * Endpoints: --s3 (default http://127.0.0.1:4566) and --api (default http://127.0.0.1:3000).
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { localS3Client } from '../local/s3-client';
import { CLASS_NAMES, loadFashionMnist, pngName, rawPixelAgreement, toPng } from './fashion-mnist';

const argv = process.argv.slice(2);
const opt = (name: string, def: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] ? argv[i + 1]! : def;
};
const s3Endpoint = opt('s3', 'http://127.0.0.1:4566');
const api = opt('api', 'http://127.0.0.1:3000');
const trainCount = Number(opt('train', '3000'));
const testCount = Number(opt('test', '1000'));

interface Item {
  key: string;
  label: number;
  pixels: Uint8Array;
}

function items(): Item[] {
  const train = loadFashionMnist('train', trainCount);
  const test = loadFashionMnist('t10k', testCount);
  return [
    ...train.images.map((pixels, i) => ({ key: `train/${pngName('train', i)}`, label: train.labels[i]!, pixels })),
    ...test.images.map((pixels, i) => ({ key: `test/${pngName('t10k', i)}`, label: test.labels[i]!, pixels })),
  ];
}

async function json<T>(url: string, init?: RequestInit): Promise<T> {
  const res = await fetch(url, init);
  const body = (await res.json()) as T;
  if (!res.ok) throw new Error(`${init?.method ?? 'GET'} ${url}: ${res.status} ${JSON.stringify(body)}`);
  return body;
}

/** The human labels used by a scenario: the first `perClass` train images of every class. */
export function labelledKeys(all: Item[], perClass: number): Array<{ key: string; label: string }> {
  const counts = new Map<number, number>();
  const out: Array<{ key: string; label: string }> = [];
  for (const it of all.filter((i) => i.key.startsWith('train/'))) {
    const n = counts.get(it.label) ?? 0;
    if (n >= perClass) continue;
    counts.set(it.label, n + 1);
    out.push({ key: it.key, label: CLASS_NAMES[it.label]! });
  }
  return out;
}

async function load(): Promise<void> {
  const all = items();
  const s3 = localS3Client(s3Endpoint);
  const started = Date.now();
  for (let i = 0; i < all.length; i += 32) {
    await Promise.all(
      all
        .slice(i, i + 32)
        .map(async (it) => s3.send(new PutObjectCommand({ Bucket: 'images', Key: it.key, Body: await toPng(it.pixels), ContentType: 'image/png' }))),
    );
  }
  s3.destroy();
  console.log(`uploaded ${all.length} images in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  for (;;) {
    const h = await json<{ indexed: number; pending: number }>(`${api}/health`);
    if (h.pending === 0 && h.indexed >= all.length) break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  console.log(`all ${all.length} indexed ${((Date.now() - started) / 1000).toFixed(1)} s after the first upload`);
  const perClass = Number(opt('labels-per-class', '10'));
  if (perClass > 0) {
    const labels = labelledKeys(all, perClass);
    await json(`${api}/labels`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ labels }) });
    console.log(`labelled ${labels.length} train images (${perClass} per class)`);
  }
}

async function score(): Promise<void> {
  const all = items();
  const labelOf = new Map(all.map((it) => [it.key, it.label]));
  const labelled = new Set(labelledKeys(all, Number(opt('labels-per-class', '10'))).map((l) => l.key));
  const stride = Math.max(1, Math.floor(all.length / Number(opt('queries', '500'))));
  const sampleIdx = all.map((_, i) => i).filter((i) => i % stride === 0);
  const sample = sampleIdx.map((i) => all[i]!);
  let agreement = 0;
  const versions = new Map<string, number>();
  for (const it of sample) {
    const res = await json<{ query: { modelVersion: string }; neighbors: Array<{ key: string }> }>(`${api}/neighbors?key=${encodeURIComponent(it.key)}&k=10`);
    agreement += res.neighbors.filter((n) => labelOf.get(n.key) === it.label).length / 10;
    versions.set(res.query.modelVersion, (versions.get(res.query.modelVersion) ?? 0) + 1);
  }
  agreement /= sample.length;
  let pseudo = 0;
  let correct = 0;
  for (const it of all.filter((x) => x.key.startsWith('test/') && !labelled.has(x.key))) {
    const st = await json<{ pseudoLabel?: string }>(`${api}/images?key=${encodeURIComponent(it.key)}`);
    if (st.pseudoLabel === undefined) continue;
    pseudo += 1;
    if (st.pseudoLabel === CLASS_NAMES[it.label]) correct += 1;
  }
  const raw = rawPixelAgreement(
    all.map((s) => s.pixels),
    all.map((s) => s.label),
    10,
    sampleIdx,
  );
  const result = {
    queries: sample.length,
    modelVersions: Object.fromEntries(versions),
    neighbourAgreement: Number(agreement.toFixed(4)),
    rawPixelAgreementOnQueries: Number(raw.toFixed(4)),
    testImagesWithPseudoLabel: pseudo,
    pseudoLabelAccuracyOnTest: pseudo ? Number((correct / pseudo).toFixed(4)) : null,
  };
  console.log(JSON.stringify(result, null, 2));
}

const command = argv[0];
(command === 'load' ? load() : command === 'score' ? score() : Promise.reject(new Error('usage: fm-scenario.ts load|score [options]'))).catch((err) => {
  console.error(err.message);
  process.exit(1);
});

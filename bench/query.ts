/**
 * Query: the embedded index (LocalVectorIndex, an exact scan) at 10k, 100k and 1M vectors of the
 * encoder's dimension (128), k=10: p50/p99 latency, QPS, recall@10 against exact, memory and
 * build time; compared in the same run with a plain exact scan over a Float32Array and with an
 * HNSW index (usearch). Vectors: a Gaussian mixture (1,000 clusters, noise 0.35 per dimension) on the unit sphere, like
 * embeddings; queries: perturbed copies of stored vectors.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalVectorStore } from '../shared/adapters/local-vector-index';
import { type BenchContext, flag, round, summarize, writeResult } from './lib/common';

const DIM = 128;

/** xorshift32: reproducible data without allocating a generator per call. */
function rng(seed: number) {
  let s = seed >>> 0 || 1;
  const u = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(u() + 1e-12)) * Math.cos(2 * Math.PI * u());
}

function normalize(v: Float32Array, at = 0): void {
  let n = 0;
  for (let j = 0; j < DIM; j += 1) n += v[at + j]! * v[at + j]!;
  n = Math.sqrt(n) || 1;
  for (let j = 0; j < DIM; j += 1) v[at + j]! /= n;
}

function dataset(n: number, seed = 1): Float32Array {
  const g = rng(seed);
  const centers = new Float32Array(1000 * DIM);
  for (let i = 0; i < centers.length; i += 1) centers[i] = g();
  const data = new Float32Array(n * DIM);
  for (let i = 0; i < n; i += 1) {
    const c = (i * 7919) % 1000;
    for (let j = 0; j < DIM; j += 1) data[i * DIM + j] = centers[c * DIM + j]! + 0.35 * g();
    normalize(data, i * DIM);
  }
  return data;
}

/** The baseline: a plain exact scan, a tight dot-product loop and a sorted top-k list. */
export function flatScan(data: Float32Array, n: number, q: Float32Array, k: number): number[] {
  const best: number[] = [];
  const scores: number[] = [];
  for (let i = 0; i < n; i += 1) {
    let dot = 0;
    const base = i * DIM;
    for (let j = 0; j < DIM; j += 1) dot += data[base + j]! * q[j]!;
    if (scores.length === k && dot <= scores[k - 1]!) continue;
    let pos = scores.length;
    while (pos > 0 && scores[pos - 1]! < dot) pos -= 1;
    scores.splice(pos, 0, dot);
    best.splice(pos, 0, i);
    if (scores.length > k) {
      scores.pop();
      best.pop();
    }
  }
  return best;
}

const rssMb = () => process.memoryUsage().rss / 2 ** 20;
const gc = () => (globalThis as { gc?: () => void }).gc?.();

function timeQueries(queries: Float32Array[], search: (q: Float32Array) => number[] | Promise<number[]>) {
  return (async () => {
    // Warm-up (JIT, onnxruntime's session and thread pool), not timed.
    for (const q of queries.slice(0, 20)) await search(q);
    const times: number[] = [];
    const results: number[][] = [];
    const t0 = performance.now();
    for (const q of queries) {
      const s = performance.now();
      results.push(await search(q));
      times.push(performance.now() - s);
    }
    const total = performance.now() - t0;
    return { latency: summarize(times), qps: round((queries.length * 1000) / total, 1), results };
  })();
}

const recall = (got: number[][], truth: number[][]) => {
  let hit = 0;
  got.forEach((g, i) => {
    const t = new Set(truth[i]);
    hit += g.filter((x) => t.has(x)).length;
  });
  return round(hit / (truth.length * truth[0]!.length), 4);
};

export async function queryBench(ctx: BenchContext): Promise<void> {
  const sizes = ctx.quick ? [2000] : (flag(ctx.args, 'sizes') ?? '10000,100000,1000000').split(',').map(Number);
  const nQueries = ctx.quick ? 20 : 1000;
  const k = 10;
  const { Index, MetricKind, ScalarKind } = await import('usearch');
  const rows: Record<string, unknown>[] = [];
  for (const n of sizes) {
    gc();
    const rss0 = rssMb();
    const data = dataset(n);
    const g = rng(99);
    const queries = Array.from({ length: nQueries }, (_, i) => {
      const q = new Float32Array(DIM);
      const src = ((i * 104729) % n) * DIM;
      for (let j = 0; j < DIM; j += 1) q[j] = data[src + j]! + 0.3 * g();
      normalize(q);
      return q;
    });

    // Plain exact scan (ground truth).
    const flat = await timeQueries(queries, (q) => flatScan(data, n, q, k));

    // The embedded index, built through its public API (journalled to disk).
    const dir = mkdtempSync(join(tmpdir(), 'bench-index-'));
    // The exact scan, as measured before the HNSW graph existed (bench ann measures the graph).
    const store = new LocalVectorStore(dir, { approximateMinVectors: Number.POSITIVE_INFINITY });
    const index = await store.ensureIndex('emb-bench', DIM);
    const ids = Array.from({ length: n }, (_, i) => i.toString(16).padStart(32, '0'));
    gc();
    const rssBeforeIndex = rssMb();
    const b0 = performance.now();
    for (let i = 0; i < n; i += 10_000) {
      const end = Math.min(n, i + 10_000);
      await index.put(
        Array.from({ length: end - i }, (_, j) => ({
          id: ids[i + j]!,
          vector: data.slice((i + j) * DIM, (i + j + 1) * DIM),
          metadata: { key: `k/${i + j}.png`, modelVersion: 'v0' },
        })),
      );
    }
    const indexBuildMs = performance.now() - b0;
    gc();
    const indexRssMb = rssMb() - rssBeforeIndex;
    const local = await timeQueries(queries, async (q) => (await index.query({ vector: q, topK: k })).map((m) => parseInt(m.id, 16)));
    await store.close();
    rmSync(dir, { recursive: true, force: true });

    // HNSW (usearch): M=16, ef_construction 128, ef_search 128.
    gc();
    const rssBeforeHnsw = rssMb();
    const hnsw = new Index({
      metric: MetricKind.Cos,
      quantization: ScalarKind.F32,
      connectivity: 16,
      dimensions: DIM,
      expansion_add: 128,
      expansion_search: 128,
      multi: false,
    });
    const h0 = performance.now();
    const keys = new BigUint64Array(n);
    for (let i = 0; i < n; i += 1) keys[i] = BigInt(i);
    hnsw.add(keys, data);
    const hnswBuildMs = performance.now() - h0;
    const hnswRssMb = rssMb() - rssBeforeHnsw;
    const hn = await timeQueries(queries, (q) => Array.from(hnsw.search(q, k, 0).keys, (x) => Number(x)));

    const row = {
      vectors: n,
      dimension: DIM,
      k,
      queries: nQueries,
      datasetMb: round((n * DIM * 4) / 2 ** 20, 1),
      flatScan: { latency: flat.latency, qps: flat.qps, recallAt10: 1 },
      localIndex: {
        latency: local.latency,
        qps: local.qps,
        recallAt10: recall(local.results, flat.results),
        buildSeconds: round(indexBuildMs / 1000, 2),
        rssMb: round(indexRssMb, 1),
      },
      hnswUsearch: {
        latency: hn.latency,
        qps: hn.qps,
        recallAt10: recall(hn.results, flat.results),
        buildSeconds: round(hnswBuildMs / 1000, 2),
        rssMb: round(hnswRssMb, 1),
        params: { M: 16, efConstruction: 128, efSearch: 128 },
      },
      ratios: { localP99OverFlatP99: round(local.latency.p99Ms / flat.latency.p99Ms, 2), localQpsOverHnswQps: round(local.qps / hn.qps, 3) },
      rssAtStartMb: round(rss0, 1),
    };
    console.log(
      `  ${n} vectors: local index p50 ${row.localIndex.latency.p50Ms} ms p99 ${row.localIndex.latency.p99Ms} ms (${row.localIndex.qps} q/s, recall ${row.localIndex.recallAt10}); ` +
        `flat scan p99 ${flat.latency.p99Ms} ms; usearch HNSW p99 ${hn.latency.p99Ms} ms (${hn.qps} q/s, recall ${row.hnswUsearch.recallAt10})`,
    );
    rows.push(row);
  }
  const at100k = rows.find((r) => r.vectors === 100_000) as { localIndex: { latency: { p99Ms: number }; recallAt10: number } } | undefined;
  writeResult(ctx, 'query', {
    rows,
    target: at100k ? { p99MsAt100k: 10, recallAt100k: 0.99, met: at100k.localIndex.latency.p99Ms <= 10 && at100k.localIndex.recallAt10 >= 0.99 } : undefined,
  });
}

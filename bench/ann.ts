/**
 * `npm run bench -- ann [--vectors 150000,1000000] [--queries 1000]`: the embedded index at a million
 * vectors, on real-encoder embeddings of real images (bench/ann_embeddings.py: Fashion-MNIST's 70,000
 * images and augmented views through a trained encoder, cached under .cache/ann).
 *
 * For each size: the vectors go in through the index's public API (journalled, fsynced), the HNSW graph
 * is built in the background as the stack would build it, then 1,000 held-out queries (fresh views) are
 * timed one at a time through `query` and scored against an exact search by usearch's own brute force
 * (recall@10). Label-filtered queries (exact by design) are timed too, alone and each after a put (as
 * during an ingest), and the saved graph is reloaded at other ef_search values to show the
 * recall/latency trade-off. `--exact` measures the same with the
 * graph off (bench/results/ann-exact.json): the exact scan the index uses below APPROXIMATE_MIN_VECTORS.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { DEFAULT_HNSW } from '../shared/adapters/hnsw-accelerator';
import { APPROXIMATE_MIN_VECTORS, type LocalVectorIndex, LocalVectorStore } from '../shared/adapters/local-vector-index';
import type { VectorRecord } from '../shared/ports/vector-index';
import { type BenchContext, flag, PYTHON, ROOT, round, summarize, writeResult } from './lib/common';

const DIM = 128;
const K = 10;
const CACHE = join(ROOT, '.cache', 'ann');

function embeddings(count: number, queries: number, trainSeconds: number): { vectors: Float32Array; labels: Uint8Array; queries: Float32Array[] } {
  const meta = existsSync(join(CACHE, 'meta.json'))
    ? (JSON.parse(readFileSync(join(CACHE, 'meta.json'), 'utf8')) as { count: number; queries: number })
    : undefined;
  if (!meta || meta.count < count || meta.queries < queries) {
    const res = spawnSync(
      PYTHON,
      ['bench/ann_embeddings.py', '--count', String(count), '--queries', String(queries), '--seconds', String(trainSeconds), '--out', CACHE],
      {
        cwd: ROOT,
        stdio: 'inherit',
      },
    );
    if (res.status !== 0) throw new Error(`ann_embeddings.py exited with ${res.status}`);
  }
  const raw = readFileSync(join(CACHE, 'vectors.f32'));
  const vectors = new Float32Array(raw.buffer, raw.byteOffset, count * DIM);
  const labels = new Uint8Array(readFileSync(join(CACHE, 'labels.u8')).subarray(0, count));
  const q = readFileSync(join(CACHE, 'queries.f32'));
  const qv = new Float32Array(q.buffer, q.byteOffset, queries * DIM);
  return { vectors, labels, queries: Array.from({ length: queries }, (_, i) => qv.slice(i * DIM, (i + 1) * DIM)) };
}

const rssMiB = () => round(process.memoryUsage().rss / 2 ** 20, 0);

export async function annBench(ctx: BenchContext): Promise<void> {
  const sizes = (flag(ctx.args, 'vectors') ?? (ctx.quick ? '20000' : `${APPROXIMATE_MIN_VECTORS},1000000`)).split(',').map(Number);
  const queryCount = Number(flag(ctx.args, 'queries') ?? (ctx.quick ? '100' : '1000'));
  // --exact: the same measurements with the graph off (the exact scan, and label filters, at these sizes).
  const exact = ctx.args.includes('--exact');
  const minVectors = exact ? Number.POSITIVE_INFINITY : ctx.quick ? 10_000 : APPROXIMATE_MIN_VECTORS;
  const usearch = await import('usearch');
  const all = embeddings(Math.max(...sizes), queryCount, ctx.quick ? 5 : 30);
  const rows: Record<string, unknown>[] = [];
  for (const n of sizes) {
    const vectors = all.vectors.subarray(0, n * DIM);
    const truth = usearch.exactSearch(vectors, concat(all.queries), DIM, K, usearch.MetricKind.Cos, 0) as import('usearch').BatchMatches;
    const truthOf = (i: number) => new Set(Array.from(truth.keys.subarray(i * K, (i + 1) * K), (x) => Number(x)));
    const dir = mkdtempSync(join(tmpdir(), 'bench-ann-'));
    const store = new LocalVectorStore(dir, { approximateMinVectors: minVectors });
    const index = (await store.ensureIndex('emb-ann', DIM)) as LocalVectorIndex;
    /** Stored image `j`'s vector and class under `id` (its own id: the same record written again). */
    const storedAs = (j: number, id = String(j)) => ({
      id,
      vector: vectors.subarray(j * DIM, (j + 1) * DIM),
      metadata: { key: `fm/${id}`, modelVersion: 'v1', label: `c${all.labels[j]}` },
    });
    const t0 = performance.now();
    for (let i = 0; i < n; i += 2000) {
      const batch = [];
      for (let j = i; j < Math.min(n, i + 2000); j += 1) batch.push(storedAs(j));
      await index.put(batch);
    }
    // From APPROXIMATE_MIN_VECTORS on, the graph is being built while the rest goes in.
    const putSeconds = round((performance.now() - t0) / 1000, 1);
    const t1 = performance.now();
    // While the graph builds, a stored image written again: the journal's work, not the graph's.
    const duringBuild = exact ? undefined : await whileBuilding(index, all.queries, (i) => storedAs((i * 7919) % n));
    const buildSeconds = round((performance.now() - t1) / 1000, 1);
    const approximate = index.approximateReady;
    // The process's memory with the index and its graph built (before the sweep loads more graphs).
    const rssAfterBuild = rssMiB();
    console.log(
      `  ${n.toLocaleString()} vectors: put ${putSeconds} s, graph ${approximate ? `built in ${buildSeconds} s` : 'not used (exact)'}; RSS ${rssAfterBuild} MiB`,
    );
    if (duringBuild) {
      console.log(
        `    while it built: query p50 ${duringBuild.query.p50Ms} ms, p99 ${duringBuild.query.p99Ms} ms; put p50 ${duringBuild.put.p50Ms} ms, p99 ${duringBuild.put.p99Ms} ms; event loop delay p99 ${duringBuild.eventLoopDelay.p99Ms} ms, max ${duringBuild.eventLoopDelay.maxMs} ms`,
      );
    }

    const timed = async (query: (q: Float32Array) => Promise<string[]>) => {
      for (const q of all.queries.slice(0, 20)) await query(q);
      const times: number[] = [];
      let hits = 0;
      for (const [i, q] of all.queries.entries()) {
        const s = performance.now();
        const ids = await query(q);
        times.push(performance.now() - s);
        const want = truthOf(i);
        hits += ids.filter((id) => want.has(Number(id))).length;
      }
      return { latency: summarize(times), recallAt10: round(hits / (all.queries.length * K), 4) };
    };
    const unfiltered = await timed(async (q) => (await index.query({ vector: q, topK: K })).map((m) => m.id));
    // A label filter is exact by design: timed on the class of each query's nearest stored vector.
    const labelOf = (i: number) => `c${all.labels[[...truthOf(i)][0]!]}`;
    const filteredTimes: number[] = [];
    for (const [i, q] of all.queries.slice(0, 200).entries()) {
      const s = performance.now();
      await index.query({ vector: q, topK: K, label: labelOf(i) });
      filteredTimes.push(performance.now() - s);
    }
    // The same while vectors go in, as during an ingest: a put (a new id, a stored image's vector and
    // class) before each filtered query, so that every query follows a change of the index.
    const duringWritesTimes: number[] = [];
    for (const [i, q] of all.queries.slice(0, 200).entries()) {
      await index.put([storedAs((i * 7919) % n, `written-${i}`)]);
      const s = performance.now();
      await index.query({ vector: q, topK: K, label: labelOf(i) });
      duringWritesTimes.push(performance.now() - s);
    }
    await store.close(); // saves the graph's snapshot
    const sweep: Record<string, unknown>[] = [];
    if (approximate) {
      for (const ef of [32, 64, 128, 256]) {
        const graph = new usearch.Index({
          dimensions: DIM,
          metric: usearch.MetricKind.Cos,
          quantization: usearch.ScalarKind.F32,
          multi: false,
          connectivity: DEFAULT_HNSW.connectivity,
          expansion_add: DEFAULT_HNSW.expansionAdd,
          expansion_search: ef,
        });
        graph.load(join(dir, 'emb-ann', 'hnsw.usearch'));
        const r = await timed(async (q) => Array.from(graph.search(q, K, 1).keys, (x) => String(x)));
        sweep.push({ expansionSearch: ef, ...r.latency, recallAt10: r.recallAt10 });
        console.log(`    ef_search ${ef}: p50 ${r.latency.p50Ms} ms, p99 ${r.latency.p99Ms} ms, recall@10 ${r.recallAt10}`);
      }
    }
    rmSync(dir, { recursive: true, force: true });
    const row = {
      vectors: n,
      path: approximate
        ? `HNSW (M=${DEFAULT_HNSW.connectivity}, ef_construction ${DEFAULT_HNSW.expansionAdd}, ef_search ${DEFAULT_HNSW.expansionSearch})`
        : 'exact scan',
      putSeconds,
      graphBuildSeconds: approximate ? buildSeconds : null,
      whileBuilding: duringBuild,
      rssMiBAfterBuild: rssAfterBuild,
      query: { ...unfiltered.latency, recallAt10: unfiltered.recallAt10 },
      labelFilteredExact: summarize(filteredTimes),
      labelFilteredDuringWrites: summarize(duringWritesTimes),
      efSearchSweep: sweep,
    };
    console.log(
      `    query p50 ${row.query.p50Ms} ms, p99 ${row.query.p99Ms} ms, recall@10 ${row.query.recallAt10}; label-filtered (exact) p50 ${row.labelFilteredExact.p50Ms} ms, p99 ${row.labelFilteredExact.p99Ms} ms; after a put p50 ${row.labelFilteredDuringWrites.p50Ms} ms, p99 ${row.labelFilteredDuringWrites.p99Ms} ms`,
    );
    rows.push(row);
  }
  writeResult(ctx, exact ? 'ann-exact' : 'ann', {
    data: 'Fashion-MNIST 70,000 images x augmented views through a trained MLP encoder (bench/ann_embeddings.py), 128-d, L2-normalised',
    queries: queryCount,
    k: K,
    approximateMinVectors: minVectors,
    rows,
  });
}

/**
 * Waits for the graph to be in step, meanwhile timing what the stack would do: every 0.5 s a query
 * (exact until the graph is ready) and a one-record put (journalled, fsynced), and all along the event
 * loop's delay (each chunk of inserts holds the loop).
 */
async function whileBuilding(index: LocalVectorIndex, queries: Float32Array[], record: (i: number) => VectorRecord) {
  const queryTimes: number[] = [];
  const putTimes: number[] = [];
  const delay = monitorEventLoopDelay({ resolution: 5 });
  delay.enable();
  let built = false;
  const settled = index.approximateSettled().then(() => {
    built = true;
  });
  for (let i = 0; !built; i += 1) {
    let s = performance.now();
    await index.query({ vector: queries[i % queries.length]!, topK: K });
    queryTimes.push(performance.now() - s);
    s = performance.now();
    await index.put([record(i)]);
    putTimes.push(performance.now() - s);
    await Promise.race([settled, new Promise((r) => setTimeout(r, 500))]);
  }
  await settled;
  delay.disable();
  return {
    query: summarize(queryTimes),
    put: summarize(putTimes),
    eventLoopDelay: { p50Ms: round(delay.percentile(50) / 1e6), p99Ms: round(delay.percentile(99) / 1e6), maxMs: round(delay.max / 1e6) },
  };
}

function concat(vectors: Float32Array[]): Float32Array {
  const out = new Float32Array(vectors.length * DIM);
  for (const [i, v] of vectors.entries()) out.set(v, i * DIM);
  return out;
}

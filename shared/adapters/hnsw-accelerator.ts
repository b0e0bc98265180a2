/**
 * An approximate nearest-neighbour graph (HNSW, usearch) over the slots of one embedded index, for
 * indexes too large for an exact scan within the query budget (LocalVectorIndex uses it from
 * APPROXIMATE_MIN_VECTORS vectors on). The index's journal stays the only source of truth: the
 * graph is derived from the in-memory slots, its key for a vector is the vector's slot, and it is
 * brought up to date in the background, a chunk of about 10 ms per event-loop turn, so neither a
 * build nor a restart blocks the stack. Until it is in step with every slot, queries are answered exactly.
 *
 * A snapshot (`hnsw.usearch`, then `hnsw.json` naming how many journal records it reflects) is saved
 * when a build finishes and when the index closes. On open, the journal's records after that count
 * are applied to the loaded graph like any other change, so a crash loses no vector, only the work
 * of updating the graph, which is redone.
 */
import { existsSync } from 'node:fs';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';

type UsearchIndex = import('usearch').Index;

export interface HnswSettings {
  /** Graph degree (M). */
  connectivity: number;
  /** Candidates kept while inserting (ef_construction). */
  expansionAdd: number;
  /** Candidates kept while searching (ef_search): recall against speed. */
  expansionSearch: number;
}

/** Measured on real-encoder embeddings of Fashion-MNIST at 1M vectors (npm run bench -- ann). */
export const DEFAULT_HNSW: HnswSettings = { connectivity: 32, expansionAdd: 128, expansionSearch: 128 };

/**
 * Native work per event-loop turn while catching up: the chunk of slots added or replaced in a turn
 * is sized to take about this long, so that requests and writes go on during a build. A fixed 256
 * slots held the loop 60 ms a turn at 150,000 vectors and about 190 ms at 1M (p99, bench ann).
 */
const TURN_MS = 10;
const FIRST_CHUNK = 64;
const MAX_CHUNK = 4096;
/** Native threads for a chunk's inserts: a build uses the machine, in short turns. */
const ADD_THREADS = Math.max(1, availableParallelism());
const SNAPSHOT_FILE = 'hnsw.usearch';
const SNAPSHOT_META = 'hnsw.json';

interface SnapshotMeta {
  /** Journal records (from the start of the log file) reflected in the snapshot. */
  records: number;
  vectors: number;
  dimension: number;
  settings: HnswSettings;
}

/** What the accelerator reads from its index: the live slots. */
export interface SlotSource {
  readonly dimension: number;
  slotCount(): number;
  vectorAt(slot: number): Float32Array;
}

export class HnswAccelerator {
  private graph: UsearchIndex;
  /** Slots below this are in the graph unless they are in `dirty`. */
  private cleanUpTo = 0;
  /** Keys in the graph at or above `cleanUpTo` (left by slots that were removed since). */
  private graphEnd = 0;
  private readonly dirty = new Set<number>();
  private syncing: Promise<void> | undefined;
  /** Slots per turn, adjusted to TURN_MS from the turns before. */
  private chunk = FIRST_CHUNK;
  private saving: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly usearch: typeof import('usearch'),
    private readonly dir: string,
    private readonly source: SlotSource,
    readonly settings: HnswSettings,
  ) {
    this.graph = this.newGraph();
  }

  static async create(dir: string, source: SlotSource, settings: HnswSettings = DEFAULT_HNSW): Promise<HnswAccelerator> {
    return new HnswAccelerator(await import('usearch'), dir, source, settings);
  }

  /**
   * The snapshot's journal position, when a compatible one exists: the index calls `adoptSnapshot`
   * once its replay reaches that many records.
   */
  static async snapshotRecords(dir: string, dimension: number, settings: HnswSettings = DEFAULT_HNSW): Promise<number | undefined> {
    try {
      const meta = JSON.parse(await readFile(join(dir, SNAPSHOT_META), 'utf8')) as SnapshotMeta;
      const same = meta.dimension === dimension && JSON.stringify(meta.settings) === JSON.stringify(settings);
      return same && existsSync(join(dir, SNAPSHOT_FILE)) ? meta.records : undefined;
    } catch {
      return undefined;
    }
  }

  /** Loads the snapshot as the graph of the current slots; false (and an empty graph) when it does not match them. */
  adoptSnapshot(vectors: number): boolean {
    try {
      const graph = this.newGraph();
      graph.load(join(this.dir, SNAPSHOT_FILE));
      if (graph.size() !== vectors || vectors !== this.source.slotCount() || !this.matches(graph, vectors)) return false;
      this.graph = graph;
      this.cleanUpTo = vectors;
      this.graphEnd = vectors;
      return true;
    } catch {
      return false;
    }
  }

  /** Spot check that the graph's keys are these slots: each sampled slot's vector is found at a key holding the same vector. */
  private matches(graph: UsearchIndex, vectors: number): boolean {
    const samples = Math.min(vectors, 32);
    for (let i = 0; i < samples; i += 1) {
      const slot = Math.floor((i * vectors) / samples);
      const vector = this.source.vectorAt(slot);
      const found = graph.search(vector, 1, 1);
      const key = Number(found.keys[0]);
      if (found.keys.length === 0 || key >= vectors || !(found.distances[0]! < 1e-4)) return false;
      const stored = this.source.vectorAt(key);
      for (let j = 0; j < vector.length; j += 1) if (Math.abs(stored[j]! - vector[j]!) > 1e-6) return false;
    }
    return true;
  }

  /** True when every slot is in the graph as it is now: queries may use it. */
  get ready(): boolean {
    return !this.closed && this.dirty.size === 0 && this.cleanUpTo === this.source.slotCount() && this.graphEnd === this.cleanUpTo;
  }

  /** A slot was added or its vector replaced. */
  changed(slot: number): void {
    if (slot < this.cleanUpTo) this.dirty.add(slot);
  }

  /** The last slot was moved into `slot` (or removed, when they are the same) and the slot count shrank to `count`. */
  moved(slot: number, count: number): void {
    if (slot < count) this.changed(slot);
    if (this.cleanUpTo > count) {
      // Keys from `count` up are stale; they are removed as the graph catches up.
      for (const d of this.dirty) if (d >= count) this.dirty.delete(d);
      this.cleanUpTo = count;
    }
  }

  /** Brings the graph up to date in the background; resolves when it is (or the index closed). */
  catchUp(onReady?: () => void): Promise<void> {
    this.syncing ??= this.sync(onReady).finally(() => {
      this.syncing = undefined;
    });
    return this.syncing;
  }

  private async sync(onReady?: () => void): Promise<void> {
    while (!this.closed && !this.ready) {
      const started = performance.now();
      const done = this.step();
      // Scaled towards TURN_MS from what this turn took (at most halved or doubled at once).
      const ratio = TURN_MS / Math.max(0.01, performance.now() - started);
      if (done === this.chunk) this.chunk = Math.round(Math.min(MAX_CHUNK, Math.max(1, this.chunk * Math.min(2, Math.max(0.5, ratio)))));
      await new Promise((r) => setImmediate(r));
    }
    if (this.ready) onReady?.();
  }

  /** Up to k nearest slots by cosine distance, or undefined while the graph is catching up. */
  search(query: Float32Array, k: number): Array<{ slot: number; distance: number }> | undefined {
    if (!this.ready) return undefined;
    const found = this.graph.search(query, Math.min(k, this.cleanUpTo), 1);
    const out: Array<{ slot: number; distance: number }> = [];
    for (let i = 0; i < found.keys.length; i += 1) out.push({ slot: Number(found.keys[i]), distance: found.distances[i]! });
    return out;
  }

  /** Saves the graph with the journal position it reflects (only when it is in step with every slot). */
  save(records: number): Promise<boolean> {
    // One save at a time: a build's end and the index's close can ask at once.
    const next = this.saving.then(() => this.saveNow(records));
    this.saving = next.catch(() => false);
    return next;
  }

  private async saveNow(records: number): Promise<boolean> {
    if (!this.ready) return false;
    const tmp = join(this.dir, `${SNAPSHOT_FILE}.tmp`);
    this.graph.save(tmp);
    await rename(tmp, join(this.dir, SNAPSHOT_FILE));
    const meta: SnapshotMeta = { records, vectors: this.cleanUpTo, dimension: this.source.dimension, settings: this.settings };
    await writeFile(join(this.dir, `${SNAPSHOT_META}.tmp`), JSON.stringify(meta));
    await rename(join(this.dir, `${SNAPSHOT_META}.tmp`), join(this.dir, SNAPSHOT_META));
    return true;
  }

  /** The journal is being rewritten: the snapshot's record count no longer means anything. */
  async forgetSnapshot(): Promise<void> {
    await rm(join(this.dir, SNAPSHOT_META), { force: true });
  }

  close(): void {
    this.closed = true;
  }

  /** One chunk of catching up: stale keys first, then changed slots, then slots never added. Returns the slots done. */
  private step(): number {
    const count = this.source.slotCount();
    let budget = this.chunk;
    while (budget > 0 && this.graphEnd > this.cleanUpTo) {
      this.graphEnd -= 1;
      this.graph.remove(BigInt(this.graphEnd));
      budget -= 1;
    }
    for (const slot of this.dirty) {
      if (budget === 0) return this.chunk;
      this.dirty.delete(slot);
      if (slot >= count) continue;
      this.replace(slot);
      budget -= 1;
    }
    const end = Math.min(count, this.cleanUpTo + budget);
    if (end > this.cleanUpTo) {
      const keys = new BigUint64Array(end - this.cleanUpTo);
      const vectors = new Float32Array(keys.length * this.source.dimension);
      for (let i = 0; i < keys.length; i += 1) {
        const slot = this.cleanUpTo + i;
        if (slot < this.graphEnd) this.graph.remove(BigInt(slot));
        keys[i] = BigInt(slot);
        vectors.set(this.source.vectorAt(slot), i * this.source.dimension);
      }
      this.graph.add(keys, vectors, ADD_THREADS);
      budget -= keys.length;
      this.cleanUpTo = end;
      this.graphEnd = Math.max(this.graphEnd, end);
    }
    return this.chunk - budget;
  }

  private replace(slot: number): void {
    const key = BigInt(slot);
    if (this.graph.contains(key)) this.graph.remove(key);
    this.graph.add(key, this.source.vectorAt(slot), 1);
  }

  private newGraph(): UsearchIndex {
    return new this.usearch.Index({
      dimensions: this.source.dimension,
      metric: this.usearch.MetricKind.Cos,
      quantization: this.usearch.ScalarKind.F32,
      connectivity: this.settings.connectivity,
      expansion_add: this.settings.expansionAdd,
      expansion_search: this.settings.expansionSearch,
      multi: false,
    });
  }
}

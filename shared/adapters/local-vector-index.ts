/**
 * The embedded stack's vector index: one directory per index, each an append-only journal of
 * full-state records (put: id, metadata, vector; delete: id) replayed into memory on open.
 *
 * Search is an exact scan (cosine distance on L2-normalised vectors) over the vectors, held in
 * fixed blocks (vector-blocks.ts), so recall is 1 by construction. Ids, metadata and labels are
 * packed beside them, off V8's heap (slot-records.ts). From NATIVE_SCAN_MIN_VECTORS
 * vectors on, the dot products are one MatMul per block in onnxruntime (SIMD, multi-threaded,
 * already a dependency for the encoder): measured 3-4x faster than the JavaScript loop at 100k
 * vectors (docs/BENCHMARKS.md).
 * Durable across restarts and crashes: a put or delete resolves only when its record is fsynced.
 *
 * From APPROXIMATE_MIN_VECTORS vectors on, unfiltered queries go to an HNSW graph kept in step with
 * the slots in the background (hnsw-accelerator.ts): an exact scan of a million vectors reads 512 MB
 * per query. Queries filtered by label, and every query while the graph catches up, stay exact: a
 * filtered query scores only the label's vectors, packed together and kept in step (label-packs.ts).
 */
import { mkdir, readdir, readFile, rm, writeFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { VectorMetadata } from '../schemas';
import type { VectorIndex, VectorMatch, VectorQuery, VectorRecord, VectorStore } from '../ports/vector-index';
import { AppendLog } from '../storage/append-log';
import { DEFAULT_HNSW, HnswAccelerator, type HnswSettings } from './hnsw-accelerator';
import { LabelPacks, VACANT } from './label-packs';
import { RECORD_BUFFER_BYTES, SlotRecords } from './slot-records';
import { VECTOR_BLOCK_BYTES, VectorBlocks } from './vector-blocks';

const OP_PUT = 1;
const OP_DELETE = 2;
const INDEX_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const COMPACT_MIN_RECORDS = 10_000;

/**
 * From this many vectors on, unfiltered queries use the HNSW graph (once it is built): below it the
 * exact scan answers within 10 ms p99 on this project's benchmark machine (npm run bench -- query, ann).
 */
export const APPROXIMATE_MIN_VECTORS = 150_000;

export interface LocalIndexOptions {
  /** Vectors from which the HNSW graph is used; Infinity keeps every query exact. */
  approximateMinVectors?: number;
  hnsw?: HnswSettings;
  /** Bytes per block of vectors (tests lower it to span blocks with few vectors). */
  vectorBlockBytes?: number;
  /** Bytes per buffer of ids and metadata (tests lower it likewise). */
  recordBufferBytes?: number;
}

/** Below this many vectors the JavaScript loop beats a native call's overhead (measured break-even: about 250 at d=128). */
export const NATIVE_SCAN_MIN_VECTORS = 512;
/** scores[n, 1] = vectors[n, d] @ query[d, 1] as an ONNX graph (scripts/make-scan-model.py prints it). */
const SCAN_MODEL =
  'CAgSCHBpcGVsaW5lOoABCiAKB3ZlY3RvcnMKBXF1ZXJ5EgZzY29yZXMiBk1hdE11bBIIZG90X3NjYW5aGwoHdmVjdG9ycxIQCg4IARIKCgMSAW4KAxIBZFoZCgVxdWVyeRIQCg4IARIKCgMSAWQKAxIBcWIaCgZzY29yZXMSEAoOCAESCgoDEgFuCgMSAXFCBAoAEA0=';

type Ort = typeof import('onnxruntime-node');
let scanSession: Promise<{ ort: Ort; session: import('onnxruntime-node').InferenceSession }> | undefined;

/** Dot products of every row with the query, in onnxruntime; the session is made once per process. */
async function nativeScores(vectors: Float32Array, n: number, d: number, query: Float32Array): Promise<Float32Array> {
  scanSession ??= (async () => {
    const ort = await import('onnxruntime-node');
    const session = await ort.InferenceSession.create(Buffer.from(SCAN_MODEL, 'base64'), { executionProviders: ['cpu'], graphOptimizationLevel: 'all' });
    return { ort, session };
  })();
  const { ort, session } = await scanSession;
  const out = await session.run({ vectors: new ort.Tensor('float32', vectors, [n, d]), query: new ort.Tensor('float32', query, [d, 1]) });
  return out.scores!.data as Float32Array;
}

export class LocalVectorIndex implements VectorIndex {
  private readonly records: SlotRecords;
  private readonly vectors: VectorBlocks;
  private recordsSinceCompaction = 0;
  /** Bumped by every change of slots, so a query can tell that the index moved under an await. */
  private mutations = 0;
  private compacting: Promise<void> | undefined;
  private log!: AppendLog;
  /** Records in the journal file (what an HNSW snapshot's position counts). */
  private logRecords = 0;
  private approximate: HnswAccelerator | undefined;
  /** Packed copies of the labels last queried (at most as many vectors as the index), kept in step with every change. */
  private readonly labelPacks: LabelPacks;
  private approximateStarting: Promise<void> | undefined;

  private constructor(
    private readonly dir: string,
    readonly name: string,
    readonly dimension: number,
    private readonly options: Required<LocalIndexOptions>,
  ) {
    this.vectors = new VectorBlocks(dimension, options.vectorBlockBytes);
    this.records = new SlotRecords({ bufferBytes: options.recordBufferBytes });
    this.labelPacks = new LabelPacks({
      dimension,
      count: () => this.records.count,
      slotsWithLabel: (label) => this.records.slotsWithLabel(label),
      withLabel: (label) => this.records.withLabel(label),
      vectorAt: (slot) => this.vectors.at(slot),
    });
  }

  static async open(dir: string, name: string, dimension: number, options: LocalIndexOptions = {}): Promise<LocalVectorIndex> {
    const resolved = {
      approximateMinVectors: options.approximateMinVectors ?? APPROXIMATE_MIN_VECTORS,
      hnsw: options.hnsw ?? DEFAULT_HNSW,
      vectorBlockBytes: options.vectorBlockBytes ?? VECTOR_BLOCK_BYTES,
      recordBufferBytes: options.recordBufferBytes ?? RECORD_BUFFER_BYTES,
    };
    const index = new LocalVectorIndex(dir, name, dimension, resolved);
    const snapshotAt = Number.isFinite(resolved.approximateMinVectors) ? await HnswAccelerator.snapshotRecords(dir, dimension, resolved.hnsw) : undefined;
    if (snapshotAt !== undefined) index.approximate = await HnswAccelerator.create(dir, index.slots(), resolved.hnsw);
    let records = 0;
    if (snapshotAt === 0) index.approximate?.adoptSnapshot(0);
    index.log = await AppendLog.open(join(dir, 'vectors.log'), (payload) => {
      records += 1;
      index.applyRecord(payload);
      // The snapshot reflects the journal up to here: later records update it like live changes.
      if (records === snapshotAt) index.approximate?.adoptSnapshot(index.records.count);
    });
    index.recordsSinceCompaction = records;
    index.logRecords = records;
    index.maybeApproximate();
    return index;
  }

  async put(records: VectorRecord[]): Promise<void> {
    if (records.length === 0) return;
    const payloads: Buffer[] = [];
    for (const r of records) {
      if (r.vector.length !== this.dimension) {
        throw new Error(`vector for ${r.id} has dimension ${r.vector.length}; index ${this.name} has ${this.dimension}`);
      }
      this.setSlot(r.id, r.vector, r.metadata);
      payloads.push(encodePut(r));
    }
    await this.journal(payloads);
  }

  async get(ids: string[]): Promise<VectorRecord[]> {
    const out: VectorRecord[] = [];
    for (const id of new Set(ids)) {
      const slot = this.records.slotOf(id);
      if (slot < 0) continue;
      out.push({ id, vector: this.vectors.at(slot).slice(), metadata: this.records.metadataAt(slot) });
    }
    return out;
  }

  async delete(ids: string[]): Promise<void> {
    const payloads: Buffer[] = [];
    for (const id of ids) {
      if (!this.removeSlot(id)) continue;
      payloads.push(encodeDelete(id));
    }
    await this.journal(payloads);
  }

  async query(q: VectorQuery): Promise<VectorMatch[]> {
    if (q.vector.length !== this.dimension) {
      throw new Error(`query has dimension ${q.vector.length}; index ${this.name} has ${this.dimension}`);
    }
    const exclude = new Set(q.excludeIds ?? []);
    const k = q.topK;
    if (q.label === undefined && this.approximate?.ready) {
      const found = this.approximate.search(q.vector, k + exclude.size);
      if (found) {
        const out: VectorMatch[] = [];
        for (const { slot, distance } of found) {
          if (slot >= this.records.count) continue;
          const id = this.records.idAt(slot);
          if (exclude.has(id)) continue;
          out.push({ id, distance, metadata: this.records.metadataAt(slot) });
          if (out.length === k) break;
        }
        return out;
      }
    }
    const top = new TopK(k);
    const d = this.dimension;
    const v = q.vector;
    const consider = (slot: number, dot: number) => {
      if (!top.admits(dot)) return;
      if (exclude.size > 0 && exclude.has(this.records.idAt(slot))) return;
      top.add(slot, dot);
    };
    const members = q.label === undefined ? 0 : this.records.labelCount(q.label);
    if (q.label !== undefined && members * 4 < this.records.count) {
      // A label's own vectors only (exact): a fraction of the index instead of all of it, packed
      // together (and kept in step with the index) so that one native MatMul scores them.
      if (members === 0) return [];
      let pack = this.labelPacks.get(q.label);
      if (pack.members >= NATIVE_SCAN_MIN_VECTORS) {
        const before = this.mutations;
        const scores = await nativeScores(pack.rowVectors(), pack.rows, d, v);
        if (this.mutations === before) {
          for (let row = 0; row < pack.rows; row += 1) if (pack.slots[row] !== VACANT) consider(pack.slots[row]!, scores[row]!);
          return this.matches(top);
        }
        // The index changed during the native call: the pack as it is now (asked for again, since a
        // query for another label may have dropped this one meanwhile), scored in this tick.
        pack = this.labelPacks.get(q.label);
      }
      for (let row = 0; row < pack.rows; row += 1) if (pack.slots[row] !== VACANT) consider(pack.slots[row]!, pack.dot(row, v));
      return this.matches(top);
    }
    const n = this.records.count;
    const wanted = q.label === undefined ? () => true : this.records.withLabel(q.label);
    if (n >= NATIVE_SCAN_MIN_VECTORS) {
      const before = this.mutations;
      const scored: Array<{ start: number; scores: Float32Array }> = [];
      for (const view of this.vectors.views(n)) scored.push({ start: view.start, scores: await nativeScores(view.vectors, view.count, d, v) });
      // Unless slots moved during the native calls (a put or delete): then score again in this tick.
      if (this.mutations === before) {
        for (const { start, scores } of scored) {
          for (let i = 0; i < scores.length; i += 1) if (top.admits(scores[i]!) && wanted(start + i)) consider(start + i, scores[i]!);
        }
        return this.matches(top);
      }
    }
    for (let slot = 0; slot < n; slot += 1) if (wanted(slot)) consider(slot, this.vectors.dot(slot, v));
    return this.matches(top);
  }

  private matches(top: TopK): VectorMatch[] {
    return top.slots.map((slot, i) => ({ id: this.records.idAt(slot), distance: 1 - top.scores[i]!, metadata: this.records.metadataAt(slot) }));
  }

  async *listIds(): AsyncIterable<string> {
    for (const id of this.records.ids()) yield id;
  }

  async count(): Promise<number> {
    return this.records.count;
  }

  /** `keepGraph: false` when the index is about to be deleted: saving its graph would be wasted work. */
  async close({ keepGraph = true } = {}): Promise<void> {
    await this.compacting;
    if (this.approximate) {
      if (keepGraph) await this.approximate.save(this.logRecords);
      this.approximate.close();
    }
    await this.log.close();
  }

  /** Whether unfiltered queries are answered by the HNSW graph now (it exists and is in step). */
  get approximateReady(): boolean {
    return this.approximate?.ready ?? false;
  }

  /** Resolves when the HNSW graph is in step with every vector (at once when there is none). */
  async approximateSettled(): Promise<void> {
    await this.approximateStarting;
    await this.approximate?.catchUp();
  }

  private slots() {
    return {
      dimension: this.dimension,
      slotCount: () => this.records.count,
      vectorAt: (slot: number) => this.vectors.at(slot),
    };
  }

  /** Starts (or resumes) the HNSW graph once the index is large enough for it. */
  private maybeApproximate(): void {
    if (this.approximateStarting) return;
    if (!this.approximate && this.records.count < this.options.approximateMinVectors) return;
    this.approximateStarting = (async () => {
      this.approximate ??= await HnswAccelerator.create(this.dir, this.slots(), this.options.hnsw);
      const accelerator = this.approximate;
      void accelerator.catchUp(() => void accelerator.save(this.logRecords).catch(() => undefined));
    })();
  }

  private applyRecord(payload: Buffer): void {
    const op = payload.readUInt8(0);
    const idLen = payload.readUInt16LE(1);
    const id = payload.toString('utf8', 3, 3 + idLen);
    if (op === OP_DELETE) {
      this.removeSlot(id);
      return;
    }
    let at = 3 + idLen;
    const metaLen = payload.readUInt32LE(at);
    at += 4;
    const metadata = JSON.parse(payload.toString('utf8', at, at + metaLen)) as VectorMetadata;
    at += metaLen;
    const vector = new Float32Array(payload.buffer.slice(payload.byteOffset + at, payload.byteOffset + at + this.dimension * 4));
    this.setSlot(id, vector, metadata);
  }

  private setSlot(id: string, vector: Float32Array, metadata: VectorMetadata): void {
    this.mutations += 1;
    let slot = this.records.slotOf(id);
    if (slot < 0) {
      slot = this.records.push(id, metadata);
    } else {
      this.records.replace(slot, metadata);
      if (!sameVector(this.vectors.at(slot), vector)) this.approximate?.changed(slot);
    }
    this.vectors.set(slot, vector);
    this.labelPacks.changed(slot);
  }

  /** Removes the id's vector (the last slot's moves into its place); false when the id is absent. */
  private removeSlot(id: string): boolean {
    const slot = this.records.slotOf(id);
    if (slot < 0) return false;
    this.mutations += 1;
    const last = this.records.count - 1;
    this.records.remove(slot);
    if (slot !== last) this.vectors.copy(last, slot);
    this.vectors.release(this.records.count);
    this.labelPacks.removed(slot, last);
    this.approximate?.moved(slot, this.records.count);
    return true;
  }

  private async journal(payloads: Buffer[]): Promise<void> {
    if (payloads.length === 0) return;
    await this.log.append(payloads);
    this.recordsSinceCompaction += payloads.length;
    this.logRecords += payloads.length;
    if (this.approximate) void this.approximate.catchUp();
    else this.maybeApproximate();
    if (!this.compacting && this.recordsSinceCompaction > Math.max(COMPACT_MIN_RECORDS, 2 * this.records.count)) {
      this.compacting = this.compact().finally(() => {
        this.compacting = undefined;
      });
    }
  }

  private async compact(): Promise<void> {
    const ids = this.records.ids();
    const self = this;
    function* snapshot(): Generator<Buffer> {
      for (const id of ids) {
        const slot = self.records.slotOf(id);
        if (slot < 0) continue;
        yield encodePut({ id, vector: self.vectors.at(slot), metadata: self.records.metadataAt(slot) });
      }
    }
    this.recordsSinceCompaction = 0;
    // The HNSW snapshot counts records of the old file: it cannot be matched to the new one.
    await this.approximate?.forgetSnapshot();
    await this.log.rewrite(snapshot());
    this.recordsSinceCompaction = ids.length;
    this.logRecords = ids.length;
  }
}

/** The k best (slot, similarity) pairs seen, best first. */
class TopK {
  readonly slots: number[] = [];
  readonly scores: number[] = [];
  constructor(private readonly k: number) {}

  admits(score: number): boolean {
    return this.scores.length < this.k || score > this.scores[this.k - 1]!;
  }

  add(slot: number, score: number): void {
    let pos = this.scores.length;
    while (pos > 0 && this.scores[pos - 1]! < score) pos -= 1;
    this.scores.splice(pos, 0, score);
    this.slots.splice(pos, 0, slot);
    if (this.scores.length > this.k) {
      this.scores.pop();
      this.slots.pop();
    }
  }
}

function sameVector(a: Float32Array, b: Float32Array): boolean {
  for (let j = 0; j < b.length; j += 1) if (a[j] !== b[j]) return false;
  return true;
}

function encodePut(r: VectorRecord): Buffer {
  const id = Buffer.from(r.id, 'utf8');
  const meta = Buffer.from(JSON.stringify(r.metadata), 'utf8');
  const buf = Buffer.allocUnsafe(1 + 2 + id.length + 4 + meta.length + r.vector.length * 4);
  let at = buf.writeUInt8(OP_PUT, 0);
  at = buf.writeUInt16LE(id.length, at);
  at += id.copy(buf, at);
  at = buf.writeUInt32LE(meta.length, at);
  at += meta.copy(buf, at);
  Buffer.from(r.vector.buffer, r.vector.byteOffset, r.vector.byteLength).copy(buf, at);
  return buf;
}

function encodeDelete(id: string): Buffer {
  const idBytes = Buffer.from(id, 'utf8');
  const buf = Buffer.allocUnsafe(3 + idBytes.length);
  buf.writeUInt8(OP_DELETE, 0);
  buf.writeUInt16LE(idBytes.length, 1);
  idBytes.copy(buf, 3);
  return buf;
}

interface IndexDescriptor {
  name: string;
  dimension: number;
  distanceMetric: 'cosine';
  createdAt: string;
}

/** The embedded indexes under one directory: `<dir>/<index name>/{index.json, vectors.log}`. */
export class LocalVectorStore implements VectorStore {
  private readonly open = new Map<string, Promise<LocalVectorIndex>>();

  constructor(
    private readonly dir: string,
    private readonly options: LocalIndexOptions = {},
  ) {}

  async ensureIndex(name: string, dimension: number): Promise<VectorIndex> {
    assertIndexName(name);
    const existing = await this.readDescriptor(name);
    if (existing) {
      if (existing.dimension !== dimension) {
        throw new Error(`index ${name} exists with dimension ${existing.dimension}, not ${dimension}`);
      }
    } else {
      const descriptor: IndexDescriptor = { name, dimension, distanceMetric: 'cosine', createdAt: new Date().toISOString() };
      await mkdir(join(this.dir, name), { recursive: true });
      const tmp = join(this.dir, name, 'index.json.tmp');
      await writeFile(tmp, JSON.stringify(descriptor, null, 2));
      await rename(tmp, join(this.dir, name, 'index.json'));
    }
    return this.load(name, dimension);
  }

  async openIndex(name: string): Promise<VectorIndex | undefined> {
    if (!INDEX_NAME.test(name)) return undefined;
    const descriptor = await this.readDescriptor(name);
    return descriptor ? this.load(name, descriptor.dimension) : undefined;
  }

  async deleteIndex(name: string): Promise<void> {
    assertIndexName(name);
    const loading = this.open.get(name);
    this.open.delete(name);
    if (loading) await (await loading).close({ keepGraph: false });
    await rm(join(this.dir, name), { recursive: true, force: true });
  }

  async listIndexes(): Promise<string[]> {
    try {
      const entries = await readdir(this.dir, { withFileTypes: true });
      const names: string[] = [];
      for (const e of entries) if (e.isDirectory() && (await this.readDescriptor(e.name))) names.push(e.name);
      return names.sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }

  async close(): Promise<void> {
    const all = [...this.open.values()];
    this.open.clear();
    for (const p of all) await (await p).close();
  }

  private load(name: string, dimension: number): Promise<LocalVectorIndex> {
    let loading = this.open.get(name);
    if (!loading) {
      loading = LocalVectorIndex.open(join(this.dir, name), name, dimension, this.options);
      this.open.set(name, loading);
      loading.catch(() => this.open.delete(name));
    }
    return loading;
  }

  private async readDescriptor(name: string): Promise<IndexDescriptor | undefined> {
    try {
      return JSON.parse(await readFile(join(this.dir, name, 'index.json'), 'utf8')) as IndexDescriptor;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }
}

function assertIndexName(name: string): void {
  if (!INDEX_NAME.test(name)) throw new Error(`invalid index name "${name}": 3-63 lowercase letters, digits, '.' or '-'`);
}

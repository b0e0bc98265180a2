/**
 * The embedded index's ids and metadata, slot by slot, packed outside V8's heap: the slot's id and
 * its metadata's JSON side by side in append-only byte chunks, a few 32-bit fields per slot, and an
 * open-addressing table from id to slot.
 *
 * As JavaScript strings, objects and a Map they cost about 180 bytes of V8 heap per vector, which
 * the collector keeps about half as much again over (measured in docs/BENCHMARKS.md), and every
 * major collection walks them. Here a vector's record costs its bytes plus 36 to 44 (its fields, and the table at half to a quarter full),
 * none of it on V8's heap. Every buffer is over glibc's 32 MiB mmap threshold ceiling, so it is a
 * mapping of its own whose pages take memory only once written, and freeing one (when the chunks
 * are compacted or the table grows) moves no threshold (see vector-blocks.ts).
 *
 * Labels and pseudo-labels are kept as small codes per slot, so a label filter reads no metadata.
 * Only the metadata a caller asks for is parsed.
 */
import type { VectorMetadata } from '../schemas';

/** Bytes of each buffer: over glibc's mmap threshold ceiling (32 MiB on 64-bit), lazily committed. */
export const RECORD_BUFFER_BYTES = 64 * 2 ** 20;

/** The 32-bit fields of a slot. */
const CHUNK = 0;
const OFFSET = 1;
const ID_BYTES = 2;
const META_BYTES = 3;
const HASH = 4;
const LABEL = 5;
const PSEUDO = 6;
const FIELDS = 7;

/** No label: label codes start at 1. */
const NONE = 0;

export interface SlotRecordsOptions {
  /** Bytes per buffer (tests lower it to span chunks and blocks with few records). */
  bufferBytes?: number;
}

export class SlotRecords {
  /** Slots in use: 0 .. count - 1. */
  count = 0;
  private readonly bufferBytes: number;
  private readonly slotsPerBlock: number;
  private readonly fields: Int32Array[] = [];
  private chunks: Buffer[] = [];
  /** Bytes written to the last chunk. */
  private chunkUsed = 0;
  private liveBytes = 0;
  private deadBytes = 0;
  /** Id table: slot + 1 at each used position, 0 where free; `mask` + 1 positions in use (a power of two). */
  private table: Int32Array;
  private mask: number;
  private readonly labelCode = new Map<string, number>();
  /** Slots with the label as label or as pseudo-label (once when both), by code. */
  private readonly labelSlots: number[] = [0];

  constructor(options: SlotRecordsOptions = {}) {
    this.bufferBytes = options.bufferBytes ?? RECORD_BUFFER_BYTES;
    this.slotsPerBlock = Math.max(1, Math.floor(this.bufferBytes / (FIELDS * 4)));
    this.mask = 1023;
    this.table = this.newTable(this.mask + 1);
  }

  /** The slot of `id`, or -1. */
  slotOf(id: string): number {
    const bytes = Buffer.from(id, 'utf8');
    const hash = hashOf(id);
    for (let at = hash & this.mask; ; at = (at + 1) & this.mask) {
      const entry = this.table[at]!;
      if (entry === 0) return -1;
      const slot = entry - 1;
      if (this.field(slot, HASH) === hash && this.idEquals(slot, bytes)) return slot;
    }
  }

  idAt(slot: number): string {
    this.check(slot);
    const at = this.field(slot, OFFSET);
    return this.chunks[this.field(slot, CHUNK)]!.toString('utf8', at, at + this.field(slot, ID_BYTES));
  }

  /** A fresh copy of the slot's metadata. */
  metadataAt(slot: number): VectorMetadata {
    this.check(slot);
    const at = this.field(slot, OFFSET) + this.field(slot, ID_BYTES);
    return JSON.parse(this.chunks[this.field(slot, CHUNK)]!.toString('utf8', at, at + this.field(slot, META_BYTES))) as VectorMetadata;
  }

  /** Adds a record in a new slot (the id must not be present: see slotOf) and returns the slot. */
  push(id: string, metadata: VectorMetadata): number {
    const slot = this.count;
    if (slot === this.fields.length * this.slotsPerBlock) this.fields.push(new Int32Array(this.slotsPerBlock * FIELDS));
    this.count += 1;
    this.setField(slot, HASH, hashOf(id));
    this.write(slot, id, metadata);
    this.labels(slot, metadata);
    if (this.count * 2 > this.mask + 1) this.grow();
    this.insert(slot);
    return slot;
  }

  /** Replaces the metadata of a slot. */
  replace(slot: number, metadata: VectorMetadata): void {
    this.check(slot);
    const id = this.idAt(slot);
    this.retire(slot);
    this.write(slot, id, metadata);
    this.labels(slot, metadata);
    this.maybeCompact();
  }

  /** Removes the record in `slot`; the last slot's record moves into it (as the index moves its vector). */
  remove(slot: number): void {
    this.check(slot);
    const last = this.count - 1;
    this.retire(slot);
    this.erase(this.positionOf(slot));
    if (slot !== last) {
      this.table[this.positionOf(last)] = slot + 1;
      for (let f = 0; f < FIELDS; f += 1) this.setField(slot, f, this.field(last, f));
    }
    this.count -= 1;
    // Blocks of fields past the slots in use are freed (one whole block is kept as a margin).
    while (this.fields.length > Math.ceil(this.count / this.slotsPerBlock) + 1) this.fields.pop();
    this.maybeCompact();
  }

  /** Slots with `label` as their label or pseudo-label. */
  labelCount(label: string): number {
    const code = this.labelCode.get(label);
    return code === undefined ? 0 : this.labelSlots[code]!;
  }

  /** A test of whether a slot has `label` as its label or pseudo-label (the label looked up once, for a scan). */
  withLabel(label: string): (slot: number) => boolean {
    const code = this.labelCode.get(label);
    if (code === undefined) return () => false;
    return (slot) => this.field(slot, LABEL) === code || this.field(slot, PSEUDO) === code;
  }

  /** The slots with `label` as their label or pseudo-label, in slot order. */
  slotsWithLabel(label: string): Int32Array {
    const code = this.labelCode.get(label);
    const out = new Int32Array(code === undefined ? 0 : this.labelSlots[code]!);
    if (out.length === 0) return out;
    let n = 0;
    for (let b = 0, base = 0; base < this.count; b += 1, base += this.slotsPerBlock) {
      const block = this.fields[b]!;
      const end = Math.min(this.slotsPerBlock, this.count - base);
      for (let i = 0; i < end; i += 1) {
        if (block[i * FIELDS + LABEL] === code || block[i * FIELDS + PSEUDO] === code) out[n++] = base + i;
      }
    }
    return out;
  }

  /** Every id, in slot order. */
  ids(): string[] {
    const out = new Array<string>(this.count);
    for (let slot = 0; slot < this.count; slot += 1) out[slot] = this.idAt(slot);
    return out;
  }

  /** Bytes held (written or reserved in use): the fields, the chunks' records, live and dead, and the table. */
  get bytes(): number {
    return this.count * FIELDS * 4 + this.liveBytes + this.deadBytes + (this.mask + 1) * 4;
  }

  private write(slot: number, id: string, metadata: VectorMetadata): void {
    const json = JSON.stringify(metadata);
    const idBytes = Buffer.byteLength(id, 'utf8');
    const metaBytes = Buffer.byteLength(json, 'utf8');
    const { chunk, at } = this.place(slot, idBytes + metaBytes);
    chunk.write(id, at, 'utf8');
    chunk.write(json, at + idBytes, 'utf8');
    this.setField(slot, ID_BYTES, idBytes);
    this.setField(slot, META_BYTES, metaBytes);
  }

  /** Rewrites the live records into fresh chunks once dead ones (replaced or removed) outweigh them. */
  private maybeCompact(): void {
    if (this.deadBytes < Math.max(this.liveBytes, this.bufferBytes / 4)) return;
    const old = this.chunks;
    this.chunks = [];
    this.chunkUsed = 0;
    this.liveBytes = 0;
    this.deadBytes = 0;
    for (let slot = 0; slot < this.count; slot += 1) {
      const from = old[this.field(slot, CHUNK)]!;
      const start = this.field(slot, OFFSET);
      const size = this.field(slot, ID_BYTES) + this.field(slot, META_BYTES);
      const { chunk, at } = this.place(slot, size);
      from.copy(chunk, at, start, start + size);
    }
  }

  /** Room for `size` bytes of record at the end of the chunks (a new chunk when the last is full), recorded as the slot's place. */
  private place(slot: number, size: number): { chunk: Buffer; at: number } {
    let chunk = this.chunks[this.chunks.length - 1];
    if (!chunk || this.chunkUsed + size > chunk.length) {
      chunk = Buffer.alloc(Math.max(this.bufferBytes, size));
      this.chunks.push(chunk);
      this.chunkUsed = 0;
    }
    const at = this.chunkUsed;
    this.chunkUsed += size;
    this.liveBytes += size;
    this.setField(slot, CHUNK, this.chunks.length - 1);
    this.setField(slot, OFFSET, at);
    return { chunk, at };
  }

  private labels(slot: number, metadata: VectorMetadata): void {
    const label = this.code(metadata.label);
    const pseudo = this.code(metadata.pseudoLabel);
    this.setField(slot, LABEL, label);
    this.setField(slot, PSEUDO, pseudo);
    if (label !== NONE) this.labelSlots[label]! += 1;
    if (pseudo !== NONE && pseudo !== label) this.labelSlots[pseudo]! += 1;
  }

  /** The slot's record becomes dead bytes and its labels stop counting it. */
  private retire(slot: number): void {
    const label = this.field(slot, LABEL);
    const pseudo = this.field(slot, PSEUDO);
    if (label !== NONE) this.labelSlots[label]! -= 1;
    if (pseudo !== NONE && pseudo !== label) this.labelSlots[pseudo]! -= 1;
    const size = this.field(slot, ID_BYTES) + this.field(slot, META_BYTES);
    this.deadBytes += size;
    this.liveBytes -= size;
  }

  /** The code of a label, made on first sight (codes are never reused: labels are few). */
  private code(label: string | undefined): number {
    if (label === undefined) return NONE;
    let code = this.labelCode.get(label);
    if (code === undefined) {
      code = this.labelSlots.length;
      this.labelSlots.push(0);
      this.labelCode.set(label, code);
    }
    return code;
  }

  private idEquals(slot: number, bytes: Buffer): boolean {
    if (this.field(slot, ID_BYTES) !== bytes.length) return false;
    const at = this.field(slot, OFFSET);
    return bytes.compare(this.chunks[this.field(slot, CHUNK)]!, at, at + bytes.length) === 0;
  }

  private insert(slot: number): void {
    let at = this.field(slot, HASH) & this.mask;
    while (this.table[at] !== 0) at = (at + 1) & this.mask;
    this.table[at] = slot + 1;
  }

  /** The table position that points at `slot`. */
  private positionOf(slot: number): number {
    for (let at = this.field(slot, HASH) & this.mask; ; at = (at + 1) & this.mask) {
      const entry = this.table[at]!;
      if (entry === slot + 1) return at;
      if (entry === 0) throw new Error(`slot ${slot} is missing from the id table`);
    }
  }

  /** Frees a table position, moving later entries of its probe run back so that every lookup still finds them. */
  private erase(position: number): void {
    let hole = position;
    this.table[hole] = 0;
    for (let at = (hole + 1) & this.mask; this.table[at] !== 0; at = (at + 1) & this.mask) {
      const entry = this.table[at]!;
      const home = this.field(entry - 1, HASH) & this.mask;
      // The entry may fill the hole unless its home lies cyclically within (hole, at].
      const stays = hole <= at ? home > hole && home <= at : home > hole || home <= at;
      if (stays) continue;
      this.table[hole] = entry;
      this.table[at] = 0;
      hole = at;
    }
  }

  private grow(): void {
    this.mask = this.mask * 2 + 1;
    this.table = this.newTable(this.mask + 1);
    for (let slot = 0; slot < this.count - 1; slot += 1) this.insert(slot);
  }

  /** A table of at least `positions` entries in one buffer over the mmap threshold (only the first `positions` are used). */
  private newTable(positions: number): Int32Array {
    return new Int32Array(Math.max(positions, Math.floor(this.bufferBytes / 4)));
  }

  private field(slot: number, f: number): number {
    return this.fields[Math.floor(slot / this.slotsPerBlock)]![(slot % this.slotsPerBlock) * FIELDS + f]!;
  }

  private setField(slot: number, f: number, value: number): void {
    this.fields[Math.floor(slot / this.slotsPerBlock)]![(slot % this.slotsPerBlock) * FIELDS + f] = value;
  }

  private check(slot: number): void {
    if (!(slot >= 0 && slot < this.count)) throw new RangeError(`slot ${slot} is not in use (${this.count} slots)`);
  }
}

/** FNV-1a over the id's UTF-16 code units, then MurmurHash3's finaliser so that the low bits (the table's) mix every character. */
function hashOf(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i += 1) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return h ^ (h >>> 16);
}

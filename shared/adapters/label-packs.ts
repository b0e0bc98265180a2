/**
 * Packed copies of a label's vectors, for the embedded index's exact label-filtered queries: the
 * label's member slots and their vectors side by side, so that one native MatMul scores them.
 *
 * A pack is built once, when its label is first queried, and then kept in step with every change of
 * the index instead of being rebuilt after it: a new member is appended, a replaced vector is
 * overwritten in its row, a slot that leaves the label leaves a vacant row, and when the index moves
 * its last slot into a freed one the row follows it. Rebuilding meant copying every member's vector
 * after any change (about 0.2 s for 100,000 members at 1M vectors on the development machine, most
 * of it first touches of the new copy's pages): during an ingest, every filtered query paid it.
 * Vacant rows are squeezed out once they are a quarter of the pack, and a full pack grows by a
 * quarter: a pack's memory is about 1.25x (at most 2.5x) its members' vectors, plus 4 bytes per slot
 * of the index.
 */

/** What packs read from their index. */
export interface LabelSource {
  readonly dimension: number;
  /** Slots in use (0 .. count - 1). */
  count(): number;
  /** The slots with `label` as their label or pseudo-label, in slot order. */
  slotsWithLabel(label: string): Int32Array;
  /** A test of whether a slot has `label` (as label or pseudo-label). */
  withLabel(label: string): (slot: number) => boolean;
  vectorAt(slot: number): Float32Array;
}

/** A row's slot once that slot has left the label. */
export const VACANT = -1;
/** The fewest rows a pack has room for. */
const MIN_ROWS = 1024;
/** Room for members added later, as a multiple of the rows (at a build, and when a full pack grows). */
const SPARE = 1.25;

export class LabelPack {
  /** Rows in use, vacant ones included: rows past this hold nothing. */
  rows = 0;
  /** Rows whose slot left the label. */
  vacant = 0;
  /** The slot of each row, VACANT where the row's slot left the label. */
  slots: Int32Array;
  /** Row-major vectors, `dimension` floats a row. */
  vectors: Float32Array;
  /** Each slot's row + 1, 0 when it is not in the pack. */
  private rowOf: Int32Array;
  private readonly has: (slot: number) => boolean;

  constructor(
    readonly label: string,
    private readonly source: LabelSource,
  ) {
    this.has = source.withLabel(label);
    const members = source.slotsWithLabel(label);
    const capacity = Math.max(MIN_ROWS, Math.ceil(members.length * SPARE));
    this.slots = new Int32Array(capacity);
    this.vectors = new Float32Array(capacity * source.dimension);
    this.rowOf = new Int32Array(Math.max(MIN_ROWS, source.count()));
    for (const slot of members) this.append(slot);
  }

  /** The member slots: rows - vacant. */
  get members(): number {
    return this.rows - this.vacant;
  }

  /** The rows' vectors (vacant rows included: skip them by `slots`). */
  rowVectors(): Float32Array {
    return this.vectors.subarray(0, this.rows * this.source.dimension);
  }

  /** The dot product of a row's vector with `v`. */
  dot(row: number, v: Float32Array): number {
    const base = row * this.source.dimension;
    let sum = 0;
    for (let j = 0; j < v.length; j += 1) sum += this.vectors[base + j]! * v[j]!;
    return sum;
  }

  /** The slot was added, or its vector or labels replaced. */
  changed(slot: number): void {
    const row = this.rowAt(slot);
    if (!this.has(slot)) {
      if (row >= 0) this.vacate(slot, row);
      return;
    }
    if (row >= 0) this.vectors.set(this.source.vectorAt(slot), row * this.source.dimension);
    else this.append(slot);
  }

  /** `slot` was removed and the last slot, `last`, moved into it (nothing moved when they are the same). */
  removed(slot: number, last: number): void {
    const row = this.rowAt(slot);
    if (row >= 0) this.vacate(slot, row);
    if (slot === last) return;
    const moved = this.rowAt(last);
    if (moved < 0) return;
    this.rowOf[last] = 0;
    this.rowOf[slot] = moved + 1;
    this.slots[moved] = slot;
  }

  /** Squeezes out vacant rows once they are a quarter of the pack (a scan should not score them). */
  tidy(): void {
    if (this.vacant * 4 > this.rows) this.squeeze();
  }

  private rowAt(slot: number): number {
    return slot < this.rowOf.length ? this.rowOf[slot]! - 1 : -1;
  }

  private vacate(slot: number, row: number): void {
    this.rowOf[slot] = 0;
    this.slots[row] = VACANT;
    this.vacant += 1;
  }

  private append(slot: number): void {
    const d = this.source.dimension;
    if (this.rows === this.slots.length) {
      if (this.vacant * 4 > this.rows) this.squeeze();
      else this.resize(Math.max(MIN_ROWS, Math.ceil(this.rows * SPARE)));
    }
    if (slot >= this.rowOf.length) {
      const rowOf = new Int32Array(Math.max(slot + 1, Math.ceil(this.rowOf.length * 1.5)));
      rowOf.set(this.rowOf);
      this.rowOf = rowOf;
    }
    const row = this.rows;
    this.rows += 1;
    this.slots[row] = slot;
    this.rowOf[slot] = row + 1;
    this.vectors.set(this.source.vectorAt(slot), row * d);
  }

  /** New arrays of `capacity` rows (at least `rows`) holding the rows in use. */
  private resize(capacity: number): void {
    const d = this.source.dimension;
    const slots = new Int32Array(capacity);
    slots.set(this.slots.subarray(0, this.rows));
    const vectors = new Float32Array(capacity * d);
    vectors.set(this.vectors.subarray(0, this.rows * d));
    this.slots = slots;
    this.vectors = vectors;
  }

  /** Moves the occupied rows down over the vacant ones, in order. */
  private squeeze(): void {
    const d = this.source.dimension;
    let to = 0;
    for (let from = 0; from < this.rows; from += 1) {
      const slot = this.slots[from]!;
      if (slot === VACANT) continue;
      if (from !== to) {
        this.slots[to] = slot;
        this.vectors.copyWithin(to * d, from * d, (from + 1) * d);
        this.rowOf[slot] = to + 1;
      }
      to += 1;
    }
    this.rows = to;
    this.vacant = 0;
    // A pack that lost most of its members gives the room back.
    if (this.slots.length > Math.max(MIN_ROWS, 2 * Math.ceil(this.rows * SPARE))) this.resize(Math.max(MIN_ROWS, Math.ceil(this.rows * SPARE)));
  }
}

/** The packs of the labels queried last, at most as many rows in all as the index has vectors. */
export class LabelPacks {
  /** In query order, the least recently queried first. */
  private readonly packs = new Map<string, LabelPack>();

  constructor(private readonly source: LabelSource) {}

  /** The label's pack, built on its first query and kept in step since. */
  get(label: string): LabelPack {
    let pack = this.packs.get(label);
    this.packs.delete(label);
    pack ??= new LabelPack(label, this.source);
    pack.tidy();
    this.packs.set(label, pack);
    // The labels queried longest ago go first, so that the copies stay within the index's own size.
    let total = 0;
    for (const p of this.packs.values()) total += p.rows;
    for (const [name, p] of this.packs) {
      if (total <= this.source.count() || name === label) break;
      this.packs.delete(name);
      total -= p.rows;
    }
    return pack;
  }

  changed(slot: number): void {
    for (const pack of this.packs.values()) pack.changed(slot);
  }

  removed(slot: number, last: number): void {
    for (const pack of this.packs.values()) pack.removed(slot, last);
  }
}

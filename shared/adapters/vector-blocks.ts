/**
 * The embedded index's vectors, slot by slot, in fixed blocks of 128 MiB that are allocated once
 * and never copied or moved while the index grows.
 *
 * One contiguous array had to be reallocated and copied as the index grew: each step held the old
 * and the new array at once, and freed the old one. glibc answers such frees by raising its mmap
 * threshold to the freed size (up to 32 MiB), after which every smaller allocation stays in its
 * heaps: the steps in the stack's RSS measured in docs/BENCHMARKS.md. A block over 32 MiB is always
 * its own mapping, and freeing it (only when the index shrinks past it) moves no threshold. A
 * block's pages take memory only once written, so a small index costs what it holds. The exact
 * scan runs one native call per block: at 128 MiB, one up to 262,144 vectors of 128 dimensions,
 * past the point where the index switches to its graph (32 MiB blocks, three calls at 150,000
 * vectors, measured 1-2 ms slower per query).
 */
export const VECTOR_BLOCK_BYTES = 128 * 2 ** 20;

export class VectorBlocks {
  /** Vectors per block. */
  readonly perBlock: number;
  private readonly blocks: Float32Array[] = [];

  constructor(
    readonly dimension: number,
    blockBytes = VECTOR_BLOCK_BYTES,
  ) {
    this.perBlock = Math.max(1, Math.ceil(blockBytes / (dimension * 4)));
  }

  /** Slots that fit without a new block. */
  get capacity(): number {
    return this.blocks.length * this.perBlock;
  }

  /** The vector in `slot`, as a view (valid until the slot is written or its block released). */
  at(slot: number): Float32Array {
    const block = this.blocks[Math.floor(slot / this.perBlock)];
    if (!block) throw new RangeError(`vector slot ${slot} is beyond the index's ${this.capacity} slots`);
    const base = (slot % this.perBlock) * this.dimension;
    return block.subarray(base, base + this.dimension);
  }

  set(slot: number, vector: Float32Array): void {
    this.ensure(slot + 1);
    const base = (slot % this.perBlock) * this.dimension;
    this.blocks[Math.floor(slot / this.perBlock)]!.set(vector, base);
  }

  /** Copies the vector in `from` into `to`. */
  copy(from: number, to: number): void {
    this.set(to, this.at(from));
  }

  /** Adds blocks until `slots` slots fit. */
  ensure(slots: number): void {
    while (this.capacity < slots) this.blocks.push(new Float32Array(this.perBlock * this.dimension));
  }

  /** Frees the blocks past those `slots` need (allocating one again costs a mapping: its pages come as they are written). */
  release(slots: number): void {
    const keep = Math.ceil(slots / this.perBlock);
    while (this.blocks.length > keep) this.blocks.pop();
  }

  /** The first `slots` vectors as one view per block: `start` is the slot of the view's first vector. */
  views(slots: number): Array<{ start: number; count: number; vectors: Float32Array }> {
    const out = [];
    for (let start = 0, b = 0; start < slots; start += this.perBlock, b += 1) {
      const count = Math.min(this.perBlock, slots - start);
      out.push({ start, count, vectors: this.blocks[b]!.subarray(0, count * this.dimension) });
    }
    return out;
  }

  /** The dot product of the vector in `slot` with `query`. */
  dot(slot: number, query: Float32Array): number {
    const block = this.blocks[Math.floor(slot / this.perBlock)]!;
    const base = (slot % this.perBlock) * this.dimension;
    let dot = 0;
    for (let j = 0; j < this.dimension; j += 1) dot += block[base + j]! * query[j]!;
    return dot;
  }
}

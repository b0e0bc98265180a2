import { type LabelSource, LabelPack, LabelPacks, VACANT } from '../../../../shared/adapters/label-packs';

const DIM = 4;

/** A minimal index: slots 0..count-1 with a vector and a label each; a removal moves the last slot into the freed one. */
class Slots implements LabelSource {
  readonly dimension = DIM;
  vectors: Float32Array[] = [];
  labels: Array<string | undefined> = [];
  count(): number {
    return this.vectors.length;
  }
  slotsWithLabel(label: string): Int32Array {
    return Int32Array.from(this.labels.flatMap((l, slot) => (l === label ? [slot] : [])));
  }
  withLabel(label: string): (slot: number) => boolean {
    return (slot) => this.labels[slot] === label;
  }
  vectorAt(slot: number): Float32Array {
    return this.vectors[slot]!;
  }
  /** Adds or replaces; returns the slot. */
  set(slot: number | undefined, vector: Float32Array, label: string | undefined): number {
    const at = slot ?? this.vectors.length;
    this.vectors[at] = vector;
    this.labels[at] = label;
    return at;
  }
  /** Removes `slot` and returns the slot that moved into it (the old last). */
  remove(slot: number): number {
    const last = this.vectors.length - 1;
    this.vectors[slot] = this.vectors[last]!;
    this.labels[slot] = this.labels[last];
    this.vectors.pop();
    this.labels.pop();
    return last;
  }
}

function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

/** The pack's live rows as slot -> vector, checked to be exactly the source's members. */
function expectInStep(pack: LabelPack, source: Slots, label: string): void {
  const got = new Map<number, number[]>();
  for (let row = 0; row < pack.rows; row += 1) {
    const slot = pack.slots[row]!;
    if (slot === VACANT) continue;
    expect(got.has(slot)).toBe(false);
    got.set(slot, Array.from(pack.vectors.subarray(row * DIM, (row + 1) * DIM)));
  }
  const want = new Map(Array.from(source.slotsWithLabel(label), (slot) => [slot, Array.from(source.vectorAt(slot))]));
  expect(got).toEqual(want);
  expect(pack.members).toBe(want.size);
}

describe('LabelPack', () => {
  it('holds exactly the label members and their vectors through random adds, replacements, relabels and moving removals', () => {
    const r = rng(5);
    const source = new Slots();
    const vec = () => Float32Array.from({ length: DIM }, () => r());
    const label = () => (r() < 0.3 ? 'a' : r() < 0.5 ? 'b' : undefined);
    for (let i = 0; i < 3000; i += 1) source.set(undefined, vec(), label());
    const pack = new LabelPack('a', source);
    expectInStep(pack, source, 'a');
    for (let round = 0; round < 40; round += 1) {
      for (let op = 0; op < 200; op += 1) {
        const x = r();
        const n = source.count();
        if (x < 0.4 || n < 10) pack.changed(source.set(undefined, vec(), label()));
        else if (x < 0.6) pack.changed(source.set(Math.floor(r() * n), vec(), source.labels[Math.floor(r() * n)]));
        else if (x < 0.75) {
          const slot = Math.floor(r() * n);
          pack.changed(source.set(slot, source.vectorAt(slot), label()));
        } else {
          const slot = Math.floor(r() * n);
          pack.removed(slot, source.remove(slot));
        }
      }
      if (round % 3 === 0) pack.tidy();
      expectInStep(pack, source, 'a');
    }
  });

  it('squeezes out vacant rows past a quarter of the pack, and gives room back when most members left', () => {
    const source = new Slots();
    for (let i = 0; i < 10_000; i += 1) source.set(undefined, Float32Array.of(i, 0, 0, 1), 'a');
    const pack = new LabelPack('a', source);
    expect(pack.rows).toBe(10_000);
    const roomBefore = pack.slots.length;
    for (let slot = 0; slot < 9_000; slot += 1) pack.changed(source.set(slot, source.vectorAt(slot), 'b'));
    expect(pack.vacant).toBe(9_000);
    pack.tidy();
    expect(pack.rows).toBe(1_000);
    expect(pack.vacant).toBe(0);
    expect(pack.slots.length).toBeLessThan(roomBefore / 4);
    expectInStep(pack, source, 'a');
    // Then it grows again as members come.
    for (let i = 0; i < 5_000; i += 1) pack.changed(source.set(undefined, Float32Array.of(-i, 1, 0, 0), 'a'));
    expect(pack.rows).toBe(6_000);
    expectInStep(pack, source, 'a');
  });
});

describe('LabelPacks', () => {
  it('keeps the packs of the labels queried last within the index size in all, and updates each', () => {
    const source = new Slots();
    for (let i = 0; i < 100; i += 1) source.set(undefined, Float32Array.of(i, 1, 0, 0), i < 60 ? 'a' : 'b');
    const packs = new LabelPacks(source);
    const a = packs.get('a');
    const b = packs.get('b');
    expect(packs.get('a')).toBe(a); // kept, not rebuilt
    packs.changed(source.set(0, Float32Array.of(9, 9, 9, 9), 'b'));
    expectInStep(a, source, 'a');
    expectInStep(b, source, 'b');
    // 'a' takes 60 rows of 100 and 'b' 41: querying 'b' last drops 'a' (the copies would outgrow the index).
    packs.get('b');
    expect(packs.get('b')).toBe(b);
    const again = packs.get('a');
    expect(again).not.toBe(a);
    expectInStep(again, source, 'a');
  });
});

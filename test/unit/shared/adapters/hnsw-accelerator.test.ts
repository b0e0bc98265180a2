import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HnswAccelerator } from '../../../../shared/adapters/hnsw-accelerator';

const DIM = 8;

function slots(count: number) {
  let s = 3;
  const r = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296 - 0.5;
  };
  const vectors = Array.from({ length: count }, () => Float32Array.from({ length: DIM }, r));
  return { dimension: DIM, slotCount: () => vectors.length, vectorAt: (slot: number) => vectors[slot]! };
}

/** Each turn of catching up seems to take `turnMs` (performance.now is read at a turn's start and end). */
async function catchUpWithTurnsOf(turnMs: number, count: number) {
  const accelerator = await HnswAccelerator.create(mkdtempSync(join(tmpdir(), 'hnsw-turns-')), slots(count));
  let now = 0;
  const clock = jest.spyOn(performance, 'now').mockImplementation(() => {
    now += turnMs / 2;
    return now;
  });
  const chunks: number[] = [];
  const proto = Object.getPrototypeOf((accelerator as unknown as { graph: object }).graph) as { add: (...args: unknown[]) => unknown };
  const original = proto.add;
  const add = jest.spyOn(proto, 'add').mockImplementation(function (this: unknown, ...args: unknown[]) {
    chunks.push((args[0] as BigUint64Array).length);
    return original.apply(this, args);
  });
  try {
    await accelerator.catchUp();
  } finally {
    clock.mockRestore();
    add.mockRestore();
  }
  expect(accelerator.ready).toBe(true);
  expect(chunks.reduce((a, b) => a + b, 0)).toBe(count);
  accelerator.close();
  return chunks;
}

describe('HnswAccelerator catching up', () => {
  it('shrinks its chunk while turns take longer than ~10 ms, so a build does not hold the event loop', async () => {
    const chunks = await catchUpWithTurnsOf(40, 300);
    // 64 slots first, then halved each turn (at most halved at once) down to one slot a turn.
    expect(chunks.slice(0, 7)).toEqual([64, 32, 16, 8, 4, 2, 1]);
    expect(new Set(chunks.slice(7))).toEqual(new Set([1]));
  });

  it('grows its chunk while turns are quick, up to 4096 slots', async () => {
    const chunks = await catchUpWithTurnsOf(0.5, 20_000);
    expect(chunks.slice(0, 7)).toEqual([64, 128, 256, 512, 1024, 2048, 4096]);
    expect(Math.max(...chunks)).toBe(4096);
  });
});

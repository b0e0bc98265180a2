import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalVectorStore } from '../../../../shared/adapters/local-vector-index';
import { SlotRecords } from '../../../../shared/adapters/slot-records';
import type { VectorMetadata } from '../../../../shared/schemas';
import { random } from '../../../support/seeded';

/** Compares every observable of the records with a plain model: slot order, ids, metadata, labels. */
function expectSame(records: SlotRecords, model: Array<{ id: string; metadata: VectorMetadata }>, absent: string[]) {
  expect(records.count).toBe(model.length);
  expect(records.ids()).toEqual(model.map((m) => m.id));
  model.forEach((m, slot) => {
    expect(records.slotOf(m.id)).toBe(slot);
    expect(records.idAt(slot)).toBe(m.id);
    expect(records.metadataAt(slot)).toEqual(m.metadata);
  });
  for (const id of absent) expect(records.slotOf(id)).toBe(-1);
  const labels = new Set(model.flatMap((m) => [m.metadata.label, m.metadata.pseudoLabel]).filter((l) => l !== undefined));
  for (const label of [...labels, 'never-used']) {
    const slots = model.flatMap((m, slot) => (m.metadata.label === label || m.metadata.pseudoLabel === label ? [slot] : []));
    expect([...records.slotsWithLabel(label)]).toEqual(slots);
    expect(records.labelCount(label)).toBe(slots.length);
    const members = new Set(slots);
    const has = records.withLabel(label);
    for (let slot = 0; slot < model.length; slot += 1) expect(has(slot)).toBe(members.has(slot));
  }
}

describe('SlotRecords', () => {
  it('keeps ids, metadata and labels in step with a model through pushes, replacements and removals (the last slot moving into the hole)', () => {
    const next = random(17);
    // Small buffers: many blocks of fields and chunks of records, compactions, and the table grown from 1,024 positions.
    const records = new SlotRecords({ bufferBytes: 4096 });
    const model: Array<{ id: string; metadata: VectorMetadata }> = [];
    const gone = new Set<string>();
    const meta = (): VectorMetadata => {
      const m: VectorMetadata = { key: `uploads/${Math.floor(next() * 1e6)}/ünïcode photo.png`, modelVersion: 'v3' };
      const r = next();
      if (r < 0.3) m.label = ['shirt', 'boot', 'bag'][Math.floor(next() * 3)]!;
      if (r > 0.2 && r < 0.5) m.pseudoLabel = ['shirt', 'boot', 'sandal'][Math.floor(next() * 3)]!;
      if (m.pseudoLabel) m.confidence = next();
      return m;
    };
    for (let step = 0; step < 6000; step += 1) {
      const r = next();
      if (r < 0.6 || model.length === 0) {
        const id = next() < 0.1 ? `фото-${step}` : (step * 2654435761).toString(16).padStart(32, '0');
        const metadata = meta();
        expect(records.push(id, metadata)).toBe(model.length);
        model.push({ id, metadata });
        gone.delete(id);
      } else if (r < 0.8) {
        const slot = Math.floor(next() * model.length);
        const metadata = meta();
        records.replace(slot, metadata);
        model[slot]!.metadata = metadata;
      } else {
        const slot = Math.floor(next() * model.length);
        records.remove(slot);
        gone.add(model[slot]!.id);
        const last = model.pop()!;
        if (slot < model.length) model[slot] = last;
      }
      if (step % 1500 === 1499) expectSame(records, model, [...gone]);
    }
    expect(model.length).toBeGreaterThan(1500);
    while (model.length > 0) {
      records.remove(0);
      gone.add(model[0]!.id);
      const last = model.pop()!;
      if (model.length > 0) model[0] = last;
    }
    expectSame(records, model, [...gone]);
  });

  it('reclaims the bytes of replaced records, and refuses slots not in use', () => {
    const records = new SlotRecords({ bufferBytes: 4096 });
    for (let i = 0; i < 100; i += 1) records.push(`id-${i}`, { key: `k/${i}.png`, modelVersion: 'v0' });
    const held = records.bytes;
    for (let round = 0; round < 50; round += 1) {
      for (let i = 0; i < 100; i += 1) records.replace(i, { key: `k/${i}.png`, modelVersion: 'v0', pseudoLabel: `round-${round % 2}` });
    }
    // 5,000 replacements of about 50 bytes each: without compaction, 250 kB of dead records.
    expect(records.bytes).toBeLessThan(held + 20_000);
    expect(records.metadataAt(42)).toEqual({ key: 'k/42.png', modelVersion: 'v0', pseudoLabel: 'round-1' });
    expect(records.labelCount('round-1')).toBe(100);
    expect(records.labelCount('round-0')).toBe(0);
    expect(() => records.idAt(100)).toThrow(RangeError);
    expect(() => records.remove(-1)).toThrow(RangeError);
  });

  it("holds an index's ids and metadata off V8's heap", async () => {
    const gc = (globalThis as { gc?: () => void }).gc;
    if (!gc) throw new Error('run with NODE_OPTIONS=--expose-gc (npm run test:unit does)');
    const store = new LocalVectorStore(mkdtempSync(join(tmpdir(), 'slot-records-')), { approximateMinVectors: Infinity });
    try {
      const index = await store.ensureIndex('emb-v0', 4);
      const n = 40_000;
      const put = async (from: number) => {
        const batch = [];
        for (let i = from; i < from + 500; i += 1) {
          batch.push({
            id: i.toString(16).padStart(32, '0'),
            vector: Float32Array.of(1, 0, 0, 0),
            metadata: { key: `fm/${String(i).padStart(6, '0')}.png`, modelVersion: 'v0' },
          });
        }
        await index.put(batch);
      };
      await put(0);
      gc();
      const before = process.memoryUsage().heapUsed;
      for (let from = 500; from < 500 + n; from += 500) await put(from);
      gc();
      const perVector = (process.memoryUsage().heapUsed - before) / n;
      // Measured: 177 bytes a vector as strings, objects and a Map; about 0 packed.
      expect(perVector).toBeLessThan(24);
      expect(await index.count()).toBe(n + 500);
      expect((await index.get(['00000000000000000000000000000abc']))[0]?.metadata).toEqual({ key: 'fm/002748.png', modelVersion: 'v0' });
    } finally {
      await store.close();
    }
  }, 60_000);
});

/**
 * A bucket's keys live in a sorted run file on disk (`keys.run`) with only recent changes in memory,
 * so the S3 server's memory does not grow with the bucket. The run is a cache of the journal: every
 * key reads and lists the same across flushes, compactions, restarts and a run that does not match
 * its journal any more.
 */
import { copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeyIndex } from '../../../../local/s3/key-index';
import { compareKeys } from '../../../../local/s3/key-order';
import { ObjectStorage } from '../../../../local/s3/storage';
import { frames, random } from '../../../support/seeded';

const attrs = { contentType: 'application/octet-stream', userMetadata: {} };
const freshDir = () => mkdtempSync(join(tmpdir(), 'key-index-'));
/** Keys that sort in an order unlike their write order, some outside the BMP. */
const keyOf = (i: number) => `${['derived', 'images', 'z\u{1F600}', 'a'][i % 4]}/${((i * 7919) % 100_003).toString(16).padStart(6, '0')}/${i}`;

async function contents(storage: ObjectStorage, bucket: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const key of storage.bucket(bucket).keysFrom('')) out.set(key, (await storage.readAll(bucket, key))!.toString());
  return out;
}

/** What the bucket should hold, in S3 order (UTF-8 byte order). */
function sorted(model: Map<string, string>): Map<string, string> {
  return new Map([...model].sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
}

/** Writes, overwrites and deletes with 16 writers at once; the model of what the bucket then holds. */
async function churn(storage: ObjectStorage, n: number, round: number, model: Map<string, string>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < n) {
        const i = next++;
        const key = keyOf(i);
        if (round > 0 && i % 5 === 0) {
          await storage.remove('bucket', key);
          model.delete(key);
        } else if (round === 0 || i % 3 === 0) {
          const body = `${key} round ${round}`;
          await storage.putBuffer('bucket', key, Buffer.from(body), attrs);
          model.set(key, body);
        }
      }
    }),
  );
}

describe('KeyIndex against a map', () => {
  it('agrees with a plain sorted map through random changes, flushes and walks that span them', async () => {
    const dir = freshDir();
    const journal = join(dir, 'journal');
    writeFileSync(journal, '');
    let settled = 0;
    const index = await KeyIndex.load(join(dir, 'keys.run'), { path: journal, settled: () => settled, isRecordOf: () => true }, { memtableKeys: 40 });
    index.release();
    const rand = random(23);
    // Characters whose UTF-16 and UTF-8 orders differ (U+FFFF against a surrogate pair): the run compares bytes.
    const alphabet = ['a', 'b', '/', '0', 'é', '\uffff', '😀'];
    const keyOf = () => Array.from({ length: 1 + Math.floor(rand() * 5) }, () => alphabet[Math.floor(rand() * alphabet.length)]).join('');
    const reference = new Map<string, number>();
    const walk = index.from('');
    let walked: string[] = [];
    for (let step = 0; step < 6000; step += 1) {
      const key = keyOf();
      if (rand() < 0.6) {
        settled += 1;
        expect(index.set(key, settled)).toBe(reference.has(key));
        reference.set(key, settled);
      } else {
        expect(index.delete(key)).toBe(reference.has(key));
        reference.delete(key);
      }
      if (step % 50 === 0) await new Promise((r) => setImmediate(r)); // let flushes run
      if (step % 7 === 0) {
        const next = walk.next();
        if (!next.done) walked.push(next.value);
      }
    }
    await index.idle();
    const sorted = [...reference.keys()].sort(compareKeys);
    expect(index.size).toBe(reference.size);
    expect([...index.from('')]).toEqual(sorted);
    for (const [key, offset] of reference) expect(index.get(key)).toBe(offset);
    expect(index.get('not there')).toBeUndefined();
    // A walk across changes and flushes never goes backwards and never repeats a key.
    walked = walked.concat([...walk]);
    for (let i = 1; i < walked.length; i += 1) expect(compareKeys(walked[i - 1]!, walked[i]!)).toBeLessThan(0);
    await index.close();
  });
});

describe('the key index on disk', () => {
  it('lists and reads every key the same across flushes to the run and a restart', async () => {
    const dir = freshDir();
    const storage = await ObjectStorage.open(dir, undefined, { metadataCacheEntries: 1, memtableKeys: 64 });
    await storage.createBucket('bucket');
    const model = new Map<string, string>();
    await churn(storage, 3000, 0, model);
    expect(existsSync(join(dir, 'bucket', 'keys.run'))).toBe(true);
    await churn(storage, 3000, 1, model);
    const bucket = storage.bucket('bucket');
    expect(bucket.size).toBe(model.size);
    expect(await contents(storage, 'bucket')).toEqual(sorted(model));
    // A listing from the middle, after a key and with a prefix, as S3 pages it.
    const all = [...sorted(model).keys()];
    expect([...bucket.keysFrom(all[1000]!, true)].slice(0, 5)).toEqual(all.slice(1001, 1006));
    const page = storage.list('bucket', { prefix: 'a/', delimiter: '', after: '', maxKeys: 50 });
    expect(page.contents.map((o) => o.key)).toEqual(all.filter((k) => k.startsWith('a/')).slice(0, 50));
    expect(bucket.get(keyOf(5))).toBeUndefined(); // deleted after it was flushed
    await storage.close();
    const again = await ObjectStorage.open(dir, undefined, { metadataCacheEntries: 1, memtableKeys: 64 });
    expect(again.bucket('bucket').size).toBe(model.size);
    expect(await contents(again, 'bucket')).toEqual(sorted(model));
    await again.close();
  }, 60_000);

  it('loses no acknowledged key when the process dies while flushes are under way', async () => {
    const dir = freshDir();
    const storage = await ObjectStorage.open(dir, undefined, { metadataCacheEntries: 1, memtableKeys: 8 });
    await storage.createBucket('bucket');
    const model = new Map<string, string>();
    await churn(storage, 1500, 0, model);
    await churn(storage, 1500, 1, model);
    // No close: a second server opens the same directory as after a crash (the first one's run may be half-written).
    const after = await ObjectStorage.open(dir, undefined, { metadataCacheEntries: 1 });
    expect(after.bucket('bucket').size).toBe(model.size);
    expect(await contents(after, 'bucket')).toEqual(sorted(model));
    await after.close();
    await storage.close();
  }, 60_000);

  it('follows a journal compaction, and rebuilds a run that does not match its journal', async () => {
    const dir = freshDir();
    const options = { metadataCacheEntries: 1, memtableKeys: 32, compactMinDead: 100 };
    const storage = await ObjectStorage.open(dir, undefined, options);
    await storage.createBucket('bucket');
    const model = new Map<string, string>();
    await churn(storage, 600, 0, model);
    await storage.bucket('bucket').compaction;
    const run = join(dir, 'bucket', 'keys.run');
    const stale = join(dir, 'stale.run');
    copyFileSync(run, stale); // a run of the journal before the compaction below
    for (let round = 1; round <= 3; round += 1) {
      await churn(storage, 600, round, model);
      await storage.bucket('bucket').compaction;
      // Read while the run may still hold offsets from before the compaction (translated).
      expect(await contents(storage, 'bucket')).toEqual(sorted(model));
    }
    await storage.close();
    // It did compact: 1,560 records were written, and the journal holds fewer than two a key.
    expect(frames(readFileSync(join(dir, 'bucket', 'meta.log')))).toBeLessThan(2 * 600);
    // The run from before the compactions: its offsets point at other records now.
    copyFileSync(stale, run);
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    const again = await ObjectStorage.open(dir, undefined, options);
    expect(warn).toHaveBeenCalledWith(expect.stringMatching(/keys\.run does not match its journal/));
    expect(await contents(again, 'bucket')).toEqual(sorted(model));
    await again.close();
    // A torn run is read as no run, and rebuilt from the journal.
    writeFileSync(run, readFileSync(run).subarray(0, 3000));
    const third = await ObjectStorage.open(dir, undefined, options);
    expect(await contents(third, 'bucket')).toEqual(sorted(model));
    await third.close();
    expect(readFileSync(run).length).toBeGreaterThan(3000);
    warn.mockRestore();
  }, 60_000);

  it('holds a bounded number of keys in memory, however many the bucket has', async () => {
    const gc = (globalThis as { gc?: () => void }).gc;
    if (!gc) throw new Error('run with NODE_OPTIONS=--expose-gc (npm run test:unit does)');
    const storage = await ObjectStorage.open(freshDir(), undefined, { metadataCacheEntries: 256, memtableKeys: 1024 });
    await storage.createBucket('artifacts');
    const body = Buffer.alloc(300, 7);
    const put = (i: number) =>
      storage.putBuffer('artifacts', `derived/${i.toString(16).padStart(32, '0')}/canonical.png`, body, { contentType: 'image/png', userMetadata: {} });
    let next = 0;
    const putUpTo = (end: number) =>
      Promise.all(
        Array.from({ length: 8 }, async () => {
          while (next < end) await put(next++);
        }),
      );
    await putUpTo(2000); // the cache and the memtable fill up first
    gc();
    const before = process.memoryUsage().heapUsed;
    const n = 20_000;
    await putUpTo(2000 + n);
    await (storage.bucket('artifacts') as unknown as { index: { idle(): Promise<void> } }).index.idle();
    storage.list('artifacts', { prefix: '', delimiter: '', after: '', maxKeys: 10 });
    gc();
    const perObject = (process.memoryUsage().heapUsed - before) / n;
    // Measured: 119 bytes an object with every key in memory (no flush), 2.3 with the run.
    expect(perObject).toBeLessThan(12);
    expect(storage.bucket('artifacts').size).toBe(2000 + n);
    await storage.close();
  }, 120_000);
});

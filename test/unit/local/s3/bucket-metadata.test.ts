/**
 * The S3 server keeps only keys (with their journal offsets) and a bounded cache of metadata in
 * memory; the rest is read back from the bucket's metadata journal, so a bucket of many objects does
 * not hold all their metadata. Small objects' bytes are in their journal record, larger ones in a
 * data file each. The journal is compacted, survives a restart, and takes over buckets written with
 * a metadata file per object.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeAll } from '../../../../local/s3/sinks';
import { ObjectStorage, type StoredObject } from '../../../../local/s3/storage';
import { frames } from '../../../support/seeded';

const attrs = { contentType: 'image/png', userMetadata: {} };

const freshDir = () => mkdtempSync(join(tmpdir(), 'bucket-meta-'));

async function contents(storage: ObjectStorage, bucket: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const meta of storage.bucket(bucket).values()) out[meta.key] = (await storage.readAll(bucket, meta.key))!.toString();
  return out;
}

describe('bucket metadata', () => {
  it('reads metadata back from the journal once it has left the bounded cache', async () => {
    const dir = freshDir();
    const storage = await ObjectStorage.open(dir, undefined, { metadataCacheEntries: 2 });
    await storage.createBucket('bucket');
    const metas: StoredObject[] = [];
    for (const key of ['a', 'b', 'c']) metas.push(await storage.putBuffer('bucket', key, Buffer.from(key), attrs));
    const bucket = storage.bucket('bucket');
    expect(bucket.size).toBe(3);
    expect([...bucket.keysFrom('')]).toEqual(['a', 'b', 'c']);
    // 'a' left the cache (2 entries): the journal answers, and the same metadata comes back.
    expect(bucket.get('a')).toEqual(metas[0]);
    // Damage a's record on disk (its ETag): a read from the journal now fails its checksum, while a
    // cached entry is still answered from memory. So a miss really is a read of the journal.
    const log = join(dir, 'bucket', 'meta.log');
    const bytes = readFileSync(log);
    const at = bytes.indexOf(metas[0]!.etag);
    bytes.write(metas[0]!.etag.startsWith('0') ? '1' : '0', at);
    writeFileSync(log, bytes);
    storage.bucket('bucket').get('b');
    storage.bucket('bucket').get('c'); // 'a' is out of the cache again
    expect(() => bucket.get('a')).toThrow(/checksum/);
    expect(bucket.get('c')).toEqual(metas[2]);
    expect(bucket.get('missing')).toBeUndefined();
    expect(await storage.remove('bucket', 'b')).toBe(true);
    expect(bucket.get('b')).toBeUndefined();
    expect([...bucket.keysFrom('')]).toEqual(['a', 'c']);
    await storage.close();
  });

  it('is the same after a restart: writes, overwrites and deletes replayed from the journal', async () => {
    const dir = freshDir();
    const first = await ObjectStorage.open(dir, undefined, { metadataCacheEntries: 1, inlineMaxBytes: 0 });
    await first.createBucket('bucket');
    for (let round = 0; round < 3; round += 1) {
      await Promise.all(Array.from({ length: 20 }, (_, i) => first.putBuffer('bucket', `k/${i}`, Buffer.from(`${i}@${round}`), attrs)));
    }
    for (let i = 0; i < 5; i += 1) await first.remove('bucket', `k/${i}`);
    const before = await contents(first, 'bucket');
    expect(Object.keys(before)).toHaveLength(15);
    expect(before['k/7']).toBe('7@2');
    await first.close();

    const again = await ObjectStorage.open(dir, undefined, { metadataCacheEntries: 1 });
    expect(await contents(again, 'bucket')).toEqual(before);
    // Only the live versions' data files are left: overwritten and deleted ones were removed.
    expect(readdirSync(join(dir, 'bucket', 'objects'))).toHaveLength(15);
    await again.close();
  });

  it('keeps small objects in their journal record and larger ones in a data file, whichever replaces which', async () => {
    const dir = freshDir();
    const storage = await ObjectStorage.open(dir, undefined, { metadataCacheEntries: 1, inlineMaxBytes: 64 });
    await storage.createBucket('bucket');
    const files = () => readdirSync(join(dir, 'bucket', 'objects')).length;
    const small = Buffer.from('small body');
    const big = Buffer.alloc(200, 'b');
    expect((await storage.putBuffer('bucket', 'a', small, attrs)).dataFile).toBeUndefined();
    expect((await storage.putBuffer('bucket', 'b', big, attrs)).dataFile).toBeDefined();
    expect(files()).toBe(1);
    expect((await storage.readAll('bucket', 'a'))!.equals(small)).toBe(true);
    expect((await storage.readAll('bucket', 'b'))!.equals(big)).toBe(true);
    // A range of an inline object, read while it is open, stays that version's even after a replace.
    const opened = (await storage.openObject('bucket', 'a'))!;
    await storage.putBuffer('bucket', 'a', big, attrs); // now a data file
    const chunks: Buffer[] = [];
    for await (const c of opened.stream(2, 5)) chunks.push(c as Buffer);
    await opened.close();
    expect(Buffer.concat(chunks).toString()).toBe('all ');
    await storage.putBuffer('bucket', 'b', small, attrs); // now inline: its data file goes
    expect(files()).toBe(1);
    // A body that arrives in pieces stays in memory up to the limit and spills to a file past it.
    const spilled = await writeAll(storage.newBody('bucket', 'c'), [Buffer.alloc(40, 'c'), Buffer.alloc(40, 'c')]);
    expect('dataFile' in spilled.bytes).toBe(true);
    const held = await writeAll(storage.newBody('bucket', 'd'), [Buffer.alloc(30, 'd'), Buffer.alloc(34, 'd')]);
    expect(held.bytes).toEqual({ inline: Buffer.alloc(64, 'd') });
    await storage.commit('bucket', 'c', { ...spilled.bytes, size: spilled.size, etag: spilled.md5 }, attrs, {}, 'ObjectCreated:Put');
    await storage.commit('bucket', 'd', { ...held.bytes, size: held.size, etag: held.md5 }, attrs, {}, 'ObjectCreated:Put');
    expect(files()).toBe(2);
    await storage.remove('bucket', 'a');
    expect(files()).toBe(1);
    const before = await contents(storage, 'bucket');
    await storage.close();

    const again = await ObjectStorage.open(dir, undefined, { metadataCacheEntries: 1, inlineMaxBytes: 64 });
    expect(await contents(again, 'bucket')).toEqual(before);
    expect(Object.keys(before)).toEqual(['b', 'c', 'd']);
    expect(files()).toBe(1);
    // The bytes really are read from the journal record: damage one of d's and its read fails the record's checksum.
    const log = join(dir, 'bucket', 'meta.log');
    const bytes = readFileSync(log);
    bytes[bytes.lastIndexOf(Buffer.alloc(64, 'd')) + 10] = 'x'.charCodeAt(0);
    writeFileSync(log, bytes);
    await expect(again.readAll('bucket', 'd')).rejects.toThrow(/checksum/);
    await again.close();
  });

  it('compacts the journal to its live records, and reads and writes go on across it', async () => {
    const dir = freshDir();
    const storage = await ObjectStorage.open(dir, undefined, { metadataCacheEntries: 4, compactMinDead: 100 });
    await storage.createBucket('bucket');
    const log = join(dir, 'bucket', 'meta.log');
    for (let round = 0; round < 12; round += 1) {
      // Writes from every round run while an earlier round's compaction may be rewriting the file.
      await Promise.all(Array.from({ length: 30 }, (_, i) => storage.putBuffer('bucket', `k/${i}`, Buffer.from(`${i}@${round}`), attrs)));
    }
    await storage.remove('bucket', 'k/0');
    await storage.close(); // waits for a compaction in progress
    // 361 records were written. Compactions keep the live ones (29) plus at most the 100 superseded
    // records that trigger the next one, and the writes held back while the last one ran.
    const records = frames(readFileSync(log));
    expect(records).toBeGreaterThanOrEqual(29);
    expect(records).toBeLessThan(29 + 100 + 31);
    const reopened = await ObjectStorage.open(dir, undefined, { metadataCacheEntries: 4 });
    const now = await contents(reopened, 'bucket');
    expect(Object.keys(now)).toHaveLength(29);
    for (let i = 1; i < 30; i += 1) expect(now[`k/${i}`]).toBe(`${i}@11`);
    await reopened.close();
  });

  it('compacts while writes go on, and every key reads back after it: copied records and the tail', async () => {
    const dir = freshDir();
    const storage = await ObjectStorage.open(dir, undefined, { metadataCacheEntries: 1, compactMinDead: 100 });
    await storage.createBucket('bucket');
    const bucket = storage.bucket('bucket');
    const body = (i: number, round: number) => Buffer.alloc(24 * 1024, `${i}@${round};`);
    // 400 inline objects of 24 KiB (9.6 MB of journal), then each written again: the superseded
    // records trigger a compaction as the last write completes.
    for (let round = 0; round < 2; round += 1) {
      await Promise.all(Array.from({ length: 400 }, (_, i) => storage.putBuffer('bucket', `k/${i}`, body(i, round), attrs)));
    }
    const running = bucket.compaction;
    expect(running).toBeDefined();
    // Written after the compaction took its starting point: these records are in the copied tail.
    await Promise.all([
      storage.putBuffer('bucket', 'during', Buffer.from('written while compacting'), attrs),
      storage.remove('bucket', 'k/0'),
      storage.putBuffer('bucket', 'k/1', body(1, 9), attrs),
    ]);
    await running;
    expect(bucket.compaction).toBeUndefined();
    const expected: Record<string, string> = { during: 'written while compacting' };
    for (let i = 1; i < 400; i += 1) expected[`k/${i}`] = body(i, i === 1 ? 9 : 1).toString();
    // Read through the journal (a cache of one entry): offsets of copied records and of the tail both hold.
    expect(await contents(storage, 'bucket')).toEqual(expected);
    const records = frames(readFileSync(join(dir, 'bucket', 'meta.log')));
    expect(records).toBeGreaterThanOrEqual(400);
    expect(records).toBeLessThan(410);
    await storage.putBuffer('bucket', 'after', Buffer.from('appended after'), attrs);
    expect((await storage.readAll('bucket', 'after'))!.toString()).toBe('appended after');
    expected.after = 'appended after';
    await storage.close();
    const again = await ObjectStorage.open(dir, undefined, { metadataCacheEntries: 1 });
    expect(await contents(again, 'bucket')).toEqual(expected);
    await again.close();
  });

  it('takes over a bucket written with a metadata file per object', async () => {
    const dir = freshDir();
    const bucketDir = join(dir, 'old');
    mkdirSync(join(bucketDir, 'objects'), { recursive: true });
    mkdirSync(join(bucketDir, 'meta'), { recursive: true });
    writeFileSync(join(bucketDir, 'bucket.json'), JSON.stringify({ name: 'old', createdAt: '2026-01-01T00:00:00.000Z', location: '' }));
    for (const key of ['x/1.png', 'x/2.png']) {
      const hash = createHash('sha256').update(key).digest('hex');
      const body = Buffer.from(`body of ${key}`);
      const meta: StoredObject = {
        key,
        size: body.length,
        etag: createHash('md5').update(body).digest('hex'),
        lastModified: '2026-01-01T00:00:00.000Z',
        dataFile: `${hash}-legacy`,
        ...attrs,
      };
      writeFileSync(join(bucketDir, 'objects', meta.dataFile!), body);
      writeFileSync(join(bucketDir, 'meta', `${hash}.json`), JSON.stringify(meta));
    }
    const storage = await ObjectStorage.open(dir, undefined, { metadataCacheEntries: 1 });
    expect(await contents(storage, 'old')).toEqual({ 'x/1.png': 'body of x/1.png', 'x/2.png': 'body of x/2.png' });
    expect(storage.bucket('old').get('x/1.png')?.lastModified).toBe('2026-01-01T00:00:00.000Z');
    expect(existsSync(join(bucketDir, 'meta'))).toBe(false);
    await storage.putBuffer('old', 'x/3.png', Buffer.from('new'), attrs);
    await storage.close();
    const again = await ObjectStorage.open(dir);
    expect(Object.keys(await contents(again, 'old'))).toEqual(['x/1.png', 'x/2.png', 'x/3.png']);
    await again.close();
  });

  it('grows by about a key per object, not by its metadata', async () => {
    const gc = (globalThis as { gc?: () => void }).gc;
    if (!gc) throw new Error('run with NODE_OPTIONS=--expose-gc (npm run test:unit does)');
    const storage = await ObjectStorage.open(freshDir(), undefined, { metadataCacheEntries: 256 });
    await storage.createBucket('artifacts');
    const body = Buffer.alloc(300, 7);
    const n = 10_000;
    const put = (i: number) =>
      storage.putBuffer('artifacts', `derived/${i.toString(16).padStart(32, '0')}/canonical.png`, body, { contentType: 'image/png', userMetadata: {} });
    for (let i = 0; i < 400; i += 1) await put(i); // the cache fills up first
    gc();
    const before = process.memoryUsage().heapUsed;
    let next = 400;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < 400 + n) await put(next++);
      }),
    );
    storage.list('artifacts', { prefix: '', delimiter: '', after: '', maxKeys: 10 });
    gc();
    const perObject = (process.memoryUsage().heapUsed - before) / n;
    // Measured: 480 bytes an object with every object's metadata in memory, 72 with keys only.
    expect(perObject).toBeLessThan(200);
    await storage.close();
  }, 120_000);
});

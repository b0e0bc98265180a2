/**
 * The S3 server keeps only keys and a bounded cache of metadata in memory; the rest is read back
 * from each object's metadata file, so a bucket of many objects does not hold all their metadata.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Bucket, ObjectStorage, type StoredObject } from '../../../../local/s3/storage';

const attrs = { contentType: 'image/png', userMetadata: {} };

describe('bucket metadata', () => {
  it('reads metadata back from disk once it has left the bounded cache', async () => {
    const storage = await ObjectStorage.open(mkdtempSync(join(tmpdir(), 'bucket-meta-')));
    await storage.createBucket('bucket');
    const dir = storage.bucket('bucket').dir;
    const bucket = new Bucket('bucket', dir, 'now', '', 2);
    const metas: StoredObject[] = [];
    for (const key of ['a', 'b', 'c']) {
      const meta = await storage.putBuffer('bucket', key, Buffer.from(key), attrs);
      metas.push(meta);
      bucket.set(meta);
    }
    expect(bucket.size).toBe(3);
    expect(bucket.sortedKeys()).toEqual(['a', 'b', 'c']);
    // 'a' left the cache (2 entries): its file answers. Change the file to see where the answer comes from.
    writeFileSync(bucket.metaPath('a'), JSON.stringify({ ...metas[0], etag: 'from-disk' }));
    expect(bucket.get('a')?.etag).toBe('from-disk');
    writeFileSync(bucket.metaPath('c'), JSON.stringify({ ...metas[2], etag: 'from-disk' }));
    expect(bucket.get('c')?.etag).toBe(metas[2]!.etag); // still cached
    expect(bucket.get('missing')).toBeUndefined();
    bucket.remove('b');
    expect(bucket.get('b')).toBeUndefined();
    expect([...bucket.values()].map((m) => m.key)).toEqual(['a', 'c']);
  });

  it('answers a key whose metadata file is gone (a delete in progress) as missing', async () => {
    const storage = await ObjectStorage.open(mkdtempSync(join(tmpdir(), 'bucket-meta-')));
    await storage.createBucket('bucket');
    const bucket = new Bucket('bucket', storage.bucket('bucket').dir, 'now', '', 1);
    bucket.addLoaded('never-written');
    expect(bucket.get('never-written')).toBeUndefined();
  });

  it('grows by about a key per object, not by its metadata', async () => {
    const gc = (globalThis as { gc?: () => void }).gc;
    if (!gc) throw new Error('run with NODE_OPTIONS=--expose-gc (npm run test:unit does)');
    const storage = await ObjectStorage.open(mkdtempSync(join(tmpdir(), 'bucket-meta-')), undefined, { metadataCacheEntries: 256 });
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
  }, 120_000);
});

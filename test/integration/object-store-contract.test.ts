/**
 * One contract, two ObjectStore adapters on the same local S3 server: the S3 SDK adapter over HTTP
 * (what Lambda runs) and the in-process store (what the embedded stack's workers use). Both must
 * behave the same, see each other's writes and emit the same events.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { localS3Client } from '../../local/s3-client';
import { LocalS3Server } from '../../local/s3-server';
import { S3ObjectStore } from '../../shared/adapters/s3-object-store';
import type { ObjectStore } from '../../shared/ports/object-store';
import type { S3EventInput } from '../../shared/s3-event';

describe.each(['s3-sdk', 'in-process'] as const)('ObjectStore contract: %s', (kind) => {
  let server: LocalS3Server;
  let store: ObjectStore;
  let other: ObjectStore;
  let events: S3EventInput[];
  const clients: Array<{ destroy(): void }> = [];

  beforeEach(async () => {
    events = [];
    server = await LocalS3Server.start({
      dataDir: mkdtempSync(join(tmpdir(), 'contract-')),
      host: '127.0.0.1',
      port: 0,
      buckets: ['bkt'],
      onEvent: async (e) => void events.push(e),
    });
    const client = localS3Client(server.endpoint);
    clients.push(client);
    const sdk = new S3ObjectStore(client);
    [store, other] = kind === 's3-sdk' ? [sdk, server.objectStore()] : [server.objectStore(), sdk];
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.destroy();
    await server.close();
  });

  it('put, head, get, delete; missing keys are undefined; the other adapter sees every write', async () => {
    expect(await store.head('bkt', 'k')).toBeUndefined();
    expect(await store.get('bkt', 'k')).toBeUndefined();
    await store.put('bkt', 'k', 'hello', 'text/plain');
    const info = (await store.head('bkt', 'k'))!;
    expect(info).toMatchObject({ key: 'k', size: 5, etag: '5d41402abc4b2a76b9719d911017c592' });
    expect(await other.head('bkt', 'k')).toMatchObject({ size: 5, etag: info.etag });
    expect((await other.get('bkt', 'k'))!.toString()).toBe('hello');
    await store.delete('bkt', 'k');
    await store.delete('bkt', 'k'); // deleting a missing key succeeds
    expect(await other.get('bkt', 'k')).toBeUndefined();
    expect(events.map((e) => `${e.eventName} ${e.key}`)).toEqual(['ObjectCreated:Put k', 'ObjectRemoved:Delete k']);
  });

  it('conditional puts: create-if-absent and replace-if-unchanged', async () => {
    expect(await store.putIf('bkt', 'lock', 'a', { ifAbsent: true })).toBe(true);
    expect(await store.putIf('bkt', 'lock', 'bkt', { ifAbsent: true })).toBe(false);
    const etag = (await store.head('bkt', 'lock'))!.etag;
    expect(await store.putIf('bkt', 'lock', 'c', { ifMatch: 'not-the-etag' })).toBe(false);
    expect(await store.putIf('bkt', 'lock', 'c', { ifMatch: etag })).toBe(true);
    expect(await store.putIf('bkt', 'lock', 'd', { ifMatch: etag })).toBe(false);
    expect(await store.putIf('bkt', 'missing', 'x', { ifMatch: etag })).toBe(false);
    expect((await other.get('bkt', 'lock'))!.toString()).toBe('c');
  });

  it('concurrent create-if-absent: exactly one winner across both adapters', async () => {
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? store : other).putIf('bkt', 'race', String(i), { ifAbsent: true })));
    expect(results.filter(Boolean)).toHaveLength(1);
  });

  it('lists in UTF-8 byte order with a prefix and startAfter; deleteMany', async () => {
    const keys = ['p/b', 'p/a', 'p/ä', 'p/Z', 'q/x', 'p/a/deep', 'o'];
    for (const k of keys) await other.put('bkt', k, k);
    const list = async (prefix?: string, after?: string) => {
      const out: string[] = [];
      for await (const o of store.list('bkt', prefix, after)) out.push(o.key);
      return out;
    };
    expect(await list()).toEqual(['o', 'p/Z', 'p/a', 'p/a/deep', 'p/b', 'p/ä', 'q/x']);
    expect(await list('p/')).toEqual(['p/Z', 'p/a', 'p/a/deep', 'p/b', 'p/ä']);
    expect(await list('p/', 'p/a')).toEqual(['p/a/deep', 'p/b', 'p/ä']);
    expect(await list('p/', 'a')).toEqual(['p/Z', 'p/a', 'p/a/deep', 'p/b', 'p/ä']);
    expect(await list('p/', 'zzz')).toEqual([]);
    await store.deleteMany('bkt', ['p/a', 'p/b', 'nope']);
    expect(await list('p/')).toEqual(['p/Z', 'p/a/deep', 'p/ä']);
  });
});

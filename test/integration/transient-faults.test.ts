/**
 * Transient faults on the wire: the S3 server answers throttling and 5xx, drops connections or
 * never answers; the clients built with the pipeline's policy retry (with jittered backoff) and
 * succeed. Also: keys cannot escape the S3 server's data directory.
 */
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { IncomingMessage } from 'node:http';
import { LocalS3Server } from '../../local/s3-server';
import { localS3Client } from '../../local/s3-client';
import { S3ObjectStore } from '../../shared/adapters/s3-object-store';
import { clientPolicy } from '../../shared/aws-client-config';

type Fault = ReturnType<NonNullable<Parameters<typeof LocalS3Server.start>[0]['faults']>>;

describe('transient faults', () => {
  let server: LocalS3Server;
  let dataDir: string;
  let plan: Fault[];
  let seen: string[];

  beforeEach(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 's3-faults-'));
    plan = [];
    seen = [];
    server = await LocalS3Server.start({
      dataDir,
      host: '127.0.0.1',
      port: 0,
      buckets: ['artifacts'],
      faults: (req: IncomingMessage) => {
        seen.push(`${req.method} ${req.url}`);
        return plan.shift();
      },
    });
  });
  afterEach(async () => {
    await server.close();
  });

  it('retries throttling (503 SlowDown), 500s and connection resets, then succeeds', async () => {
    const client = localS3Client(server.endpoint);
    const store = new S3ObjectStore(client);
    plan = [{ status: 503, code: 'SlowDown' }, { status: 500, code: 'InternalError' }, 'reset'];
    await store.put('artifacts', 'a.json', '{"ok":true}');
    expect(seen.filter((s) => s.startsWith('PUT'))).toHaveLength(4);
    plan = [{ status: 503, code: 'SlowDown' }];
    expect((await store.get('artifacts', 'a.json'))!.toString()).toBe('{"ok":true}');
    client.destroy();
  }, 60_000);

  it('retries a request that never answers once its timeout passes', async () => {
    const client = localS3Client(server.endpoint, clientPolicy({ requestTimeoutMs: 500 }));
    const store = new S3ObjectStore(client);
    await store.put('artifacts', 'b.json', 'x');
    plan = ['hang'];
    expect((await store.get('artifacts', 'b.json'))!.toString()).toBe('x');
    client.destroy();
  }, 60_000);

  it('gives up after maxAttempts and surfaces the error (the queue retries the message later)', async () => {
    const client = localS3Client(server.endpoint, clientPolicy({ maxAttempts: 3 }));
    plan = Array.from({ length: 10 }, () => ({ status: 503, code: 'SlowDown' }));
    await expect(new S3ObjectStore(client).put('artifacts', 'c.json', 'x')).rejects.toThrow();
    expect(seen).toHaveLength(3);
    client.destroy();
  }, 60_000);

  it('stores hostile keys inside its data directory: no path traversal', async () => {
    const store = new S3ObjectStore(localS3Client(server.endpoint));
    const keys = ['../../../../tmp/escaped', '..%2F..%2Fescaped', '/abs/path', 'a/../../b', '\\..\\..\\win'];
    for (const key of keys) await store.put('artifacts', key, key);
    for (const key of keys) expect((await store.get('artifacts', key))!.toString()).toBe(key);
    // Raw requests with dot segments and encoded slashes, as a hostile client would send them.
    for (const path of ['/artifacts/..%2F..%2F..%2Fetc%2Fpasswd', '/..%2Fartifacts/x', '/artifacts/%2E%2E/%2E%2E/x']) {
      const status = await new Promise<number>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port: server.port, method: 'PUT', path, headers: { 'content-length': 1 } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end('x');
      });
      expect([200, 400, 404]).toContain(status);
    }
    expect(existsSync(join(dirname(dataDir), 'escaped'))).toBe(false);
    expect(existsSync('/tmp/escaped')).toBe(false);
    expect(readdirSync(dataDir).sort()).toEqual(['artifacts']);
  });
});

import { execFile } from 'node:child_process';
import { connect } from 'node:net';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  paginateListObjectsV2,
} from '@aws-sdk/client-s3';
import { LocalS3Server } from '../../local/s3-server';
import { S3ObjectStore } from '../../shared/adapters/s3-object-store';
import type { S3EventInput } from '../../shared/s3-event';

const run = promisify(execFile);

describe('LocalS3Server', () => {
  let dataDir: string;
  let server: LocalS3Server;
  let client: S3Client;
  let events: S3EventInput[];

  const start = async () => {
    server = await LocalS3Server.start({ dataDir, host: '127.0.0.1', port: 0, buckets: ['images', 'artifacts'], onEvent: async (e) => void events.push(e) });
    client = new S3Client({ endpoint: server.endpoint, forcePathStyle: true, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
  };

  beforeEach(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 's3-'));
    events = [];
    await start();
  });
  afterEach(async () => {
    client.destroy();
    await server.close();
  });

  it('stores and returns objects with keys that need encoding, with ETags, ranges and user metadata', async () => {
    const key = 'dir/über photo + (1)#?.jpg';
    const put = await client.send(
      new PutObjectCommand({ Bucket: 'images', Key: key, Body: 'hello world', ContentType: 'image/jpeg', Metadata: { who: 'me' } }),
    );
    expect(put.ETag).toBe('"5eb63bbbe01eeed093cb22bb8f5acdc3"');
    const got = await client.send(new GetObjectCommand({ Bucket: 'images', Key: key }));
    expect(await got.Body!.transformToString()).toBe('hello world');
    expect(got.ContentType).toBe('image/jpeg');
    expect(got.Metadata).toEqual({ who: 'me' });
    const range = await client.send(new GetObjectCommand({ Bucket: 'images', Key: key, Range: 'bytes=6-' }));
    expect(await range.Body!.transformToString()).toBe('world');
    expect((await client.send(new HeadObjectCommand({ Bucket: 'images', Key: key }))).ContentLength).toBe(11);
    await expect(client.send(new GetObjectCommand({ Bucket: 'images', Key: 'missing' }))).rejects.toMatchObject({ name: 'NoSuchKey' });
    await expect(client.send(new HeadObjectCommand({ Bucket: 'images', Key: 'missing' }))).rejects.toMatchObject({ $metadata: { httpStatusCode: 404 } });
    await expect(client.send(new GetObjectCommand({ Bucket: 'nope', Key: 'x' }))).rejects.toMatchObject({ name: 'NoSuchBucket' });
  });

  it('emits created and removed events with increasing sequencers, and only for existing keys on delete', async () => {
    await client.send(new PutObjectCommand({ Bucket: 'images', Key: 'a', Body: '1' }));
    await client.send(new CopyObjectCommand({ Bucket: 'images', Key: 'b', CopySource: 'images/a' }));
    await client.send(new DeleteObjectCommand({ Bucket: 'images', Key: 'a' }));
    await client.send(new DeleteObjectCommand({ Bucket: 'images', Key: 'never' }));
    await client.send(new DeleteObjectsCommand({ Bucket: 'images', Delete: { Objects: [{ Key: 'b' }, { Key: 'zzz' }] } }));
    expect(events.map((e) => [e.eventName, e.key])).toEqual([
      ['ObjectCreated:Put', 'a'],
      ['ObjectCreated:Copy', 'b'],
      ['ObjectRemoved:Delete', 'a'],
      ['ObjectRemoved:Delete', 'b'],
    ]);
    const seqs = events.map((e) => e.sequencer);
    expect([...seqs].sort()).toEqual(seqs);
    expect(new Set(seqs).size).toBe(seqs.length);
  });

  it('lists with prefix, delimiter and pagination in UTF-8 byte order', async () => {
    const keys = ['a/1', 'a/2', 'a/3', 'b/1', 'c', 'z', 'é'];
    for (const k of [...keys].reverse()) await client.send(new PutObjectCommand({ Bucket: 'artifacts', Key: k, Body: k }));
    const all: string[] = [];
    for await (const page of paginateListObjectsV2({ client, pageSize: 2 }, { Bucket: 'artifacts' })) all.push(...(page.Contents ?? []).map((o) => o.Key!));
    expect(all).toEqual(keys);
    const grouped = await client.send(new ListObjectsV2Command({ Bucket: 'artifacts', Delimiter: '/' }));
    expect(grouped.CommonPrefixes!.map((p) => p.Prefix)).toEqual(['a/', 'b/']);
    expect(grouped.Contents!.map((o) => o.Key)).toEqual(['c', 'z', 'é']);
    const prefixed = await client.send(new ListObjectsV2Command({ Bucket: 'artifacts', Prefix: 'a/', StartAfter: 'a/1' }));
    expect(prefixed.Contents!.map((o) => o.Key)).toEqual(['a/2', 'a/3']);
    // S3 lists buckets by name.
    expect((await client.send(new ListBucketsCommand({}))).Buckets!.map((b) => b.Name)).toEqual(['artifacts', 'images']);
  });

  it('assembles multipart uploads', async () => {
    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: 'images', Key: 'big.bin' }));
    const p1 = Buffer.alloc(5 * 1024 * 1024, 1);
    const p2 = Buffer.from('tail');
    const e1 = await client.send(new UploadPartCommand({ Bucket: 'images', Key: 'big.bin', UploadId, PartNumber: 1, Body: p1 }));
    const e2 = await client.send(new UploadPartCommand({ Bucket: 'images', Key: 'big.bin', UploadId, PartNumber: 2, Body: p2 }));
    await client.send(
      new CompleteMultipartUploadCommand({
        Bucket: 'images',
        Key: 'big.bin',
        UploadId,
        MultipartUpload: {
          Parts: [
            { PartNumber: 1, ETag: e1.ETag },
            { PartNumber: 2, ETag: e2.ETag },
          ],
        },
      }),
    );
    const got = Buffer.from(await (await client.send(new GetObjectCommand({ Bucket: 'images', Key: 'big.bin' }))).Body!.transformToByteArray());
    expect(got.equals(Buffer.concat([p1, p2]))).toBe(true);
    expect(events.at(-1)).toMatchObject({ eventName: 'ObjectCreated:CompleteMultipartUpload', size: p1.length + 4 });
  });

  it('honours conditional writes (If-None-Match: *, If-Match) through the S3 adapter', async () => {
    const store = new S3ObjectStore(client);
    expect(await store.putIf('artifacts', 'locks/x.json', 'a', { ifAbsent: true })).toBe(true);
    expect(await store.putIf('artifacts', 'locks/x.json', 'b', { ifAbsent: true })).toBe(false);
    const etag = (await store.head('artifacts', 'locks/x.json'))!.etag;
    expect(await store.putIf('artifacts', 'locks/x.json', 'c', { ifMatch: etag })).toBe(true);
    expect(await store.putIf('artifacts', 'locks/x.json', 'd', { ifMatch: etag })).toBe(false);
    expect((await store.get('artifacts', 'locks/x.json'))!.toString()).toBe('c');
  });

  it('closes the object file when a client hangs up mid-download (a leak fails the file at teardown)', async () => {
    await client.send(new PutObjectCommand({ Bucket: 'images', Key: 'big.bin', Body: Buffer.alloc(8 * 1024 * 1024, 3) }));
    const { port } = new URL(server.endpoint);
    for (let i = 0; i < 20; i += 1) {
      await new Promise<void>((resolve) => {
        const socket = connect(Number(port), '127.0.0.1', () => {
          socket.write('GET /images/big.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
          // Hang up at once, or after the first bytes of the body.
          if (i % 2 === 0) socket.destroy();
          else socket.once('data', () => socket.destroy());
        });
        socket.on('close', () => resolve());
        socket.on('error', () => undefined);
      });
    }
    // The server is still serving, and the whole object is intact.
    const got = await client.send(new GetObjectCommand({ Bucket: 'images', Key: 'big.bin' }));
    expect((await got.Body!.transformToByteArray()).length).toBe(8 * 1024 * 1024);
  });

  it('keeps every object across a restart', async () => {
    await client.send(new PutObjectCommand({ Bucket: 'images', Key: 'keep/me.png', Body: 'v1' }));
    await client.send(new PutObjectCommand({ Bucket: 'images', Key: 'keep/me.png', Body: 'v2' }));
    client.destroy();
    await server.close();
    await start();
    expect(await (await client.send(new GetObjectCommand({ Bucket: 'images', Key: 'keep/me.png' }))).Body!.transformToString()).toBe('v2');
  });

  it('works with the AWS CLI: recursive upload of a folder (including a multipart-sized file), list and download', async () => {
    const src = mkdtempSync(join(tmpdir(), 'cli-src-'));
    mkdirSync(join(src, 'sub dir'));
    writeFileSync(join(src, 'one.png'), 'png-bytes');
    writeFileSync(join(src, 'sub dir', 'two + three.jpg'), Buffer.alloc(9 * 1024 * 1024, 7));
    const env = { ...process.env, AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local', AWS_DEFAULT_REGION: 'us-east-1' };
    await run('aws', ['--endpoint-url', server.endpoint, 's3', 'cp', src, 's3://images/cli/', '--recursive', '--only-show-errors'], { env });
    const { stdout } = await run('aws', ['--endpoint-url', server.endpoint, 's3', 'ls', 's3://images/cli/', '--recursive'], { env });
    expect(stdout).toContain('cli/one.png');
    expect(stdout).toContain('cli/sub dir/two + three.jpg');
    const head = await client.send(new HeadObjectCommand({ Bucket: 'images', Key: 'cli/sub dir/two + three.jpg' }));
    expect(head.ContentLength).toBe(9 * 1024 * 1024);
    const dst = mkdtempSync(join(tmpdir(), 'cli-dst-'));
    await run('aws', ['--endpoint-url', server.endpoint, 's3', 'cp', 's3://images/cli/one.png', join(dst, 'one.png'), '--only-show-errors'], { env });
    expect(
      events
        .filter((e) => e.key.startsWith('cli/'))
        .map((e) => e.key)
        .sort(),
    ).toEqual(['cli/one.png', 'cli/sub dir/two + three.jpg']);
  }, 60_000);
});

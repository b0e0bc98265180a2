/**
 * The embedded S3 server driven by S3 clients we did not write, as users run them: the AWS CLI,
 * boto3 (with its managed transfers and paginators) and rclone. Copy (server-side, multipart via
 * UploadPartCopy), sync both ways, and paginated listings with a delimiter.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { LocalS3Server } from '../../local/s3-server';
import { localS3Client } from '../../local/s3-client';

const run = promisify(execFile);
const PYTHON = resolve(__dirname, '../../.venv/bin/python');
const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');
const BIG = randomBytes(12 * 1024 * 1024 + 123);
const PREFIXES = ['tree/a/', 'tree/b/', 'tree/c/', 'tree/d/', 'tree/e/'];

describe('Embedded S3 server with third-party clients', () => {
  let server: LocalS3Server;
  let client: S3Client;
  let env: NodeJS.ProcessEnv;

  const object = async (bucket: string, key: string) =>
    Buffer.from(await (await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body!.transformToByteArray());

  beforeAll(async () => {
    server = await LocalS3Server.start({ dataDir: mkdtempSync(join(tmpdir(), 's3-clients-')), host: '127.0.0.1', port: 0, buckets: ['images', 'artifacts'] });
    client = localS3Client(server.endpoint);
    env = {
      ...process.env,
      AWS_ACCESS_KEY_ID: 'local',
      AWS_SECRET_ACCESS_KEY: 'local',
      AWS_DEFAULT_REGION: 'us-east-1',
      AWS_EC2_METADATA_DISABLED: 'true',
      RCLONE_CONFIG_LOCAL_TYPE: 's3',
      RCLONE_CONFIG_LOCAL_PROVIDER: 'Other',
      RCLONE_CONFIG_LOCAL_ENDPOINT: server.endpoint,
      RCLONE_CONFIG_LOCAL_ACCESS_KEY_ID: 'local',
      RCLONE_CONFIG_LOCAL_SECRET_ACCESS_KEY: 'local',
      RCLONE_CONFIG_LOCAL_FORCE_PATH_STYLE: 'true',
    };
    await client.send(new PutObjectCommand({ Bucket: 'images', Key: 'big.bin', Body: BIG }));
    // Five common prefixes of three keys each, and two keys beside them.
    for (const p of PREFIXES)
      for (const n of [1, 2, 3]) await client.send(new PutObjectCommand({ Bucket: 'artifacts', Key: `${p}${n}.txt`, Body: `${p}${n}` }));
    for (const k of ['tree/x.txt', 'tree/y.txt']) await client.send(new PutObjectCommand({ Bucket: 'artifacts', Key: k, Body: k }));
  });
  afterAll(async () => {
    client.destroy();
    await server.close();
  });

  describe('AWS CLI', () => {
    const aws = (...args: string[]) => run('aws', ['--endpoint-url', server.endpoint, ...args], { env, maxBuffer: 16 * 1024 * 1024 });

    it('copies a multipart-sized object between buckets server-side (UploadPartCopy)', async () => {
      await aws('s3', 'cp', 's3://images/big.bin', 's3://artifacts/cli-copy.bin', '--only-show-errors');
      expect(md5(await object('artifacts', 'cli-copy.bin'))).toBe(md5(BIG));
    }, 60_000);

    it('syncs a folder up, picks up a change and a deletion, and syncs back down', async () => {
      const src = mkdtempSync(join(tmpdir(), 'cli-sync-'));
      mkdirSync(join(src, 'nested dir'));
      writeFileSync(join(src, 'a.txt'), 'a');
      writeFileSync(join(src, 'nested dir', 'b + c.txt'), 'bc');
      await aws('s3', 'sync', src, 's3://artifacts/sync/', '--only-show-errors');
      writeFileSync(join(src, 'a.txt'), 'a, changed');
      writeFileSync(join(src, 'nested dir', 'b + c.txt'), '');
      await run('rm', [join(src, 'nested dir', 'b + c.txt')]);
      await aws('s3', 'sync', src, 's3://artifacts/sync/', '--delete', '--only-show-errors');
      const dst = mkdtempSync(join(tmpdir(), 'cli-sync-down-'));
      await aws('s3', 'sync', 's3://artifacts/sync/', dst, '--only-show-errors');
      expect(readFileSync(join(dst, 'a.txt'), 'utf8')).toBe('a, changed');
      expect(existsSync(join(dst, 'nested dir', 'b + c.txt'))).toBe(false);
    }, 60_000);

    it('paginates a delimited listing one key per page without repeating a prefix', async () => {
      const { stdout } = await aws(
        's3api',
        'list-objects-v2',
        '--bucket',
        'artifacts',
        '--prefix',
        'tree/',
        '--delimiter',
        '/',
        '--page-size',
        '1',
        '--output',
        'json',
      );
      const out = JSON.parse(stdout) as { CommonPrefixes: Array<{ Prefix: string }>; Contents: Array<{ Key: string }> };
      expect(out.CommonPrefixes.map((p) => p.Prefix)).toEqual(PREFIXES);
      expect(out.Contents.map((c) => c.Key)).toEqual(['tree/x.txt', 'tree/y.txt']);
      const v1 = JSON.parse(
        (await aws('s3api', 'list-objects', '--bucket', 'artifacts', '--prefix', 'tree/', '--delimiter', '/', '--page-size', '1', '--output', 'json')).stdout,
      ) as typeof out;
      expect(v1.CommonPrefixes.map((p) => p.Prefix)).toEqual(PREFIXES);
    }, 60_000);
  });

  describe('boto3', () => {
    const python = async (script: string) => (await run(PYTHON, ['-c', script, server.endpoint], { env, maxBuffer: 16 * 1024 * 1024 })).stdout;
    const preamble = [
      'import hashlib, io, json, sys, boto3',
      'from boto3.s3.transfer import TransferConfig',
      's3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1")',
      'cfg = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)',
    ].join('\n');

    it('paginates delimited listings (v1 and v2, two keys a page) to exactly the five prefixes', async () => {
      const out = await python(
        `${preamble}
result = {}
for op in ["list_objects_v2", "list_objects"]:
    prefixes, keys = [], []
    for page in s3.get_paginator(op).paginate(Bucket="artifacts", Prefix="tree/", Delimiter="/", PaginationConfig={"PageSize": 2}):
        prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        keys += [c["Key"] for c in page.get("Contents", [])]
    result[op] = {"prefixes": prefixes, "keys": keys}
print(json.dumps(result))`,
      );
      const result = JSON.parse(out) as Record<string, { prefixes: string[]; keys: string[] }>;
      for (const op of ['list_objects_v2', 'list_objects']) expect(result[op]).toEqual({ prefixes: PREFIXES, keys: ['tree/x.txt', 'tree/y.txt'] });
    }, 60_000);

    it('managed copy (multipart, UploadPartCopy) and managed upload/download keep every byte', async () => {
      const out = await python(
        `${preamble}
s3.copy({"Bucket": "images", "Key": "big.bin"}, "artifacts", "boto-copy.bin", Config=cfg)
data = bytes(range(256)) * (7 * 1024 * 16 + 3)
s3.upload_fileobj(io.BytesIO(data), "artifacts", "boto-upload.bin", Config=cfg)
buf = io.BytesIO()
s3.download_fileobj("artifacts", "boto-upload.bin", buf, Config=cfg)
print(json.dumps({"roundtrip": buf.getvalue() == data, "uploadEtag": s3.head_object(Bucket="artifacts", Key="boto-upload.bin")["ETag"]}))`,
      );
      const result = JSON.parse(out) as { roundtrip: boolean; uploadEtag: string };
      expect(result.roundtrip).toBe(true);
      expect(result.uploadEtag).toMatch(/-\d+"$/);
      expect(md5(await object('artifacts', 'boto-copy.bin'))).toBe(md5(BIG));
    }, 60_000);
  });

  describe('rclone', () => {
    // rclone refuses AWS_CA_BUNDLE on a plain-HTTP endpoint; the local server has no TLS anyway.
    const rclone = (...args: string[]) =>
      run('rclone', ['--config', '/dev/null', ...args], { env: { ...env, AWS_CA_BUNDLE: '' }, maxBuffer: 16 * 1024 * 1024 });

    it('copies, syncs, lists directories and server-side copies in parts', async () => {
      const src = mkdtempSync(join(tmpdir(), 'rclone-src-'));
      mkdirSync(join(src, 'd'));
      writeFileSync(join(src, 'one.txt'), 'one');
      writeFileSync(join(src, 'd', 'two.txt'), 'two');
      await rclone('sync', src, 'local:artifacts/rc');
      await rclone('check', src, 'local:artifacts/rc');
      const { stdout: dirs } = await rclone('lsf', '--dirs-only', 'local:artifacts/tree');
      expect(dirs.trim().split('\n')).toEqual(['a/', 'b/', 'c/', 'd/', 'e/']);
      await rclone('copyto', '--s3-copy-cutoff', '5M', 'local:images/big.bin', 'local:artifacts/rclone-copy.bin');
      expect(md5(await object('artifacts', 'rclone-copy.bin'))).toBe(md5(BIG));
    }, 60_000);
  });
});

/**
 * Walks every S3 query sub-resource with every method against an object and a bucket of the
 * embedded S3 server: what it does not implement answers 501 NotImplemented, and whatever the
 * answer, no object's bytes change and no object event reaches the pipeline.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalS3Server } from '../../local/s3-server';
import { S3_SUBRESOURCES } from '../../local/s3/operations';
import type { S3EventInput } from '../../shared/s3-event';

interface Reply {
  status: number;
  body: Buffer;
}

function send(port: number, method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, method, path, headers: { ...headers, ...(body !== undefined ? { 'content-length': String(Buffer.byteLength(body)) } : {}) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const ORIGINAL = 'the original bytes of the object';
const md5 = (b: Buffer | string) => createHash('md5').update(b).digest('hex');
const XML_BODY = '<?xml version="1.0" encoding="UTF-8"?><Tagging><TagSet><Tag><Key>k</Key><Value>v</Value></Tag></TagSet></Tagging>';

/** What the server implements for a sub-resource on a target (others must answer 501). */
const IMPLEMENTED: Record<string, string[]> = {
  object: [
    'GET acl',
    'HEAD acl',
    'PUT acl',
    'POST uploads',
    'PUT uploadId',
    'POST uploadId',
    'DELETE uploadId',
    'GET uploadId',
    'PUT partNumber',
    'GET partNumber',
    'HEAD partNumber',
    'GET versionId',
    'HEAD versionId',
    'PUT versionId',
    'DELETE versionId',
  ],
  bucket: ['GET acl', 'PUT acl', 'GET location', 'GET uploads', 'GET versions', 'POST delete'],
};

describe('Embedded S3 server: unsupported requests', () => {
  let server: LocalS3Server;
  const events: S3EventInput[] = [];

  beforeAll(async () => {
    server = await LocalS3Server.start({
      dataDir: mkdtempSync(join(tmpdir(), 's3-unsupported-')),
      host: '127.0.0.1',
      port: 0,
      buckets: ['images'],
      onEvent: async (e) => void events.push(e),
    });
    expect((await send(server.port, 'PUT', '/images/photo.jpg', ORIGINAL)).status).toBe(200);
    events.length = 0;
  });
  afterAll(() => server.close());

  const cases = S3_SUBRESOURCES.flatMap((sub) =>
    ['GET', 'HEAD', 'PUT', 'POST', 'DELETE'].flatMap((method) => [
      { target: 'object', method, sub, path: `/images/photo.jpg?${sub}` },
      { target: 'bucket', method, sub, path: `/images?${sub}` },
    ]),
  );

  it.each(cases.map((c) => [`${c.method} ${c.path}`, c] as const))('%s changes nothing', async (_name, c) => {
    const reply = await send(server.port, c.method, c.path, ['PUT', 'POST'].includes(c.method) ? XML_BODY : undefined, { 'content-type': 'application/xml' });
    const implemented = IMPLEMENTED[c.target]!.includes(`${c.method} ${c.sub}`);
    if (!implemented) {
      expect({ status: reply.status, code: /<Code>([^<]*)<\/Code>/.exec(reply.body.toString())?.[1] ?? null }).toEqual({
        status: 501,
        code: c.method === 'HEAD' ? null : 'NotImplemented',
      });
    }
    // Never the object's bytes for a sub-resource GET, never a changed object, never an event.
    if (c.method === 'GET' && c.sub !== 'partNumber' && c.sub !== 'versionId') expect(reply.body.toString()).not.toBe(ORIGINAL);
    const now = await send(server.port, 'GET', '/images/photo.jpg');
    expect({ status: now.status, md5: md5(now.body) }).toEqual({ status: 200, md5: md5(ORIGINAL) });
    expect(events).toEqual([]);
  });

  it('refuses headers that ask for what the server does not do, and stores nothing', async () => {
    const refused: Array<Record<string, string>> = [
      { 'x-amz-tagging': 'a=b' },
      { 'x-amz-object-lock-mode': 'GOVERNANCE', 'x-amz-object-lock-retain-until-date': '2030-01-01T00:00:00Z' },
      { 'x-amz-server-side-encryption': 'aws:kms' },
      { 'x-amz-server-side-encryption-customer-algorithm': 'AES256' },
      { 'x-amz-storage-class': 'GLACIER' },
      { 'x-amz-grant-read': 'uri="http://acs.amazonaws.com/groups/global/AllUsers"' },
      { 'x-amz-website-redirect-location': '/elsewhere' },
    ];
    for (const headers of refused) {
      const reply = await send(server.port, 'PUT', '/images/photo.jpg', 'replacement', headers);
      expect({ headers, status: reply.status }).toEqual({ headers, status: 501 });
    }
    expect(md5((await send(server.port, 'GET', '/images/photo.jpg')).body)).toBe(md5(ORIGINAL));
    expect(events).toEqual([]);
  });
});

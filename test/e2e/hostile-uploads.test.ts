/**
 * The awkward and hostile corpus through the running stack, uploaded with the AWS SDK: every
 * object ends indexed or quarantined with its reason in GET /images; deletes remove vectors;
 * a re-upload of a bad key with a good image replaces the quarantine; the stack stays up.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { buildCorpus } from '../support/corpus';
import { gradientImage } from '../support/images';
import { getJson, startStackProcess, waitFor, type StackProcess } from '../support/stack-process';

interface Status {
  key: string;
  state: string;
  reason?: string;
}

describe('hostile uploads on the embedded stack', () => {
  let stack: StackProcess;
  afterAll(async () => {
    await stack?.stop();
  });

  it('indexes or quarantines every object with a reason, handles deletes and re-uploads, stays up', async () => {
    stack = await startStackProcess(mkdtempSync(join(tmpdir(), 'e2e-hostile-')), { MAX_IMAGE_BYTES: String(20 * 1024 * 1024) });
    const corpus = await buildCorpus();
    const s3 = new S3Client({ endpoint: stack.s3, forcePathStyle: true, region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
    for (const item of corpus) await s3.send(new PutObjectCommand({ Bucket: 'images', Key: item.key, Body: item.bytes }));
    const tooBig = 'hostile/over-the-size-limit.jpg';
    await s3.send(new PutObjectCommand({ Bucket: 'images', Key: tooBig, Body: Buffer.alloc(21 * 1024 * 1024, 0xff) }));

    const expectedIndexed = corpus.filter((c) => c.expect === 'indexed').length;
    const quarantined = corpus.length + 1 - expectedIndexed;
    await waitFor(
      'every object settled',
      async () => {
        const h = (await getJson<{ indexed: number; pending: number; quarantined: number }>(`${stack.api}/health`)).body;
        return h.pending === 0 && h.indexed === expectedIndexed && h.quarantined === quarantined ? h : undefined;
      },
      120_000,
    );
    for (const item of corpus) {
      const { status, body } = await getJson<Status>(`${stack.api}/images?key=${encodeURIComponent(item.key)}`);
      expect({ what: item.what, status, state: body.state }).toEqual({ what: item.what, status: 200, state: item.expect });
      if (item.reason) expect(body.reason).toMatch(item.reason);
    }
    expect((await getJson<Status>(`${stack.api}/images?key=${encodeURIComponent(tooBig)}`)).body).toMatchObject({
      state: 'quarantined',
      reason: expect.stringMatching(/limit is 20971520/),
    });

    // Every indexed image, however awkward, answers /neighbors.
    const unicode = corpus.find((c) => c.what === 'unicode key')!.key;
    const n = await getJson<{ neighbors: Array<{ key: string }> }>(`${stack.api}/neighbors?key=${encodeURIComponent(unicode)}&k=5`);
    expect(n.status).toBe(200);
    expect(n.body.neighbors).toHaveLength(5);

    // A bad key re-uploaded with a good image is indexed; a deleted image leaves the index.
    const bad = corpus.find((c) => c.what === 'plain text')!.key;
    await s3.send(new PutObjectCommand({ Bucket: 'images', Key: bad, Body: await gradientImage(32, 32) }));
    const deleted = corpus.find((c) => c.what === 'WebP')!.key;
    await s3.send(new DeleteObjectCommand({ Bucket: 'images', Key: deleted }));
    await waitFor(
      're-upload indexed',
      async () => ((await getJson<Status>(`${stack.api}/images?key=${encodeURIComponent(bad)}`)).body.state === 'indexed' ? true : undefined),
      60_000,
    );
    await waitFor(
      'delete processed',
      async () => ((await getJson<{ indexed: number; pending: number }>(`${stack.api}/health`)).body.indexed === expectedIndexed ? true : undefined),
      60_000,
    );
    expect((await getJson(`${stack.api}/images?key=${encodeURIComponent(deleted)}`)).status).toBe(404);
    const found = (await getJson<{ neighbors: Array<{ key: string }> }>(`${stack.api}/neighbors?key=${encodeURIComponent(unicode)}&k=50`)).body.neighbors.map(
      (x) => x.key,
    );
    expect(found).not.toContain(deleted);
    expect(found).toContain(bad);
    s3.destroy();
    expect(stack.child.exitCode).toBeNull();
  }, 300_000);
});

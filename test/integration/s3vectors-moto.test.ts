import { CreateVectorBucketCommand, S3VectorsClient } from '@aws-sdk/client-s3vectors';
import { S3VectorsStore } from '../../shared/adapters/s3vectors-vector-index';
import { l2Normalize } from '../../shared/image/tensor';
import { startMoto, type MotoServer } from '../support/moto';

// moto speaks the S3 Vectors wire protocol for everything but QueryVectors, which the unit tests cover with mocks.
describe('S3VectorsStore against moto', () => {
  let moto: MotoServer;
  let client: S3VectorsClient;
  const bucket = 'pipeline-vectors';

  beforeAll(async () => {
    moto = await startMoto();
    client = new S3VectorsClient({ endpoint: moto.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
    await client.send(new CreateVectorBucketCommand({ vectorBucketName: bucket }));
  }, 40_000);
  afterAll(async () => {
    client?.destroy();
    await moto?.stop();
  });

  it('creates an index once, then puts, gets, lists and deletes vectors in batches', async () => {
    const store = new S3VectorsStore(client, bucket);
    expect(await store.openIndex('emb-v0')).toBeUndefined();
    const index = await store.ensureIndex('emb-v0', 4);
    await store.ensureIndex('emb-v0', 4);
    expect(await store.listIndexes()).toEqual(['emb-v0']);

    const records = Array.from({ length: 620 }, (_, i) => ({
      id: `img${String(i).padStart(4, '0')}`,
      vector: l2Normalize(Float32Array.from([1 + i, 2, 3, 4])),
      metadata: { key: `photos/${i}.png`, modelVersion: 'v0', ...(i % 2 ? { label: 'odd' } : {}) },
    }));
    await index.put(records);
    expect(await index.count()).toBe(620);

    const got = await index.get(['img0001', 'img0500', 'missing']);
    expect(got.map((r) => r.id).sort()).toEqual(['img0001', 'img0500']);
    const one = got.find((r) => r.id === 'img0001')!;
    expect(one.metadata).toEqual({ key: 'photos/1.png', modelVersion: 'v0', label: 'odd' });
    for (const [i, v] of Array.from(one.vector).entries()) expect(v).toBeCloseTo(records[1]!.vector[i]!, 6);

    await index.put([{ ...records[1]!, metadata: { ...records[1]!.metadata, label: 'relabelled' } }]);
    expect((await index.get(['img0001']))[0]!.metadata.label).toBe('relabelled');

    await index.delete(records.slice(0, 510).map((r) => r.id));
    expect(await index.count()).toBe(110);
    await store.deleteIndex('emb-v0');
    expect(await store.listIndexes()).toEqual([]);
  }, 60_000);
});

import {
  ConflictException,
  CreateIndexCommand,
  DeleteVectorsCommand,
  GetIndexCommand,
  GetVectorsCommand,
  NotFoundException,
  PutVectorsCommand,
  QueryVectorsCommand,
  S3VectorsClient,
} from '@aws-sdk/client-s3vectors';
import { mockClient } from 'aws-sdk-client-mock';
import { S3VectorsIndex, S3VectorsStore } from '../../../../shared/adapters/s3vectors-vector-index';

const s3v = mockClient(S3VectorsClient);
const BUCKET = 'vectors';
const record = (i: number) => ({ id: `id${i}`, vector: Float32Array.from([i, 1]), metadata: { key: `k${i}`, modelVersion: 'v1' } });
const notFound = () => new NotFoundException({ message: 'no index', $metadata: {} });

describe('S3VectorsIndex', () => {
  beforeEach(() => s3v.reset());

  describe('put', () => {
    it('writes in batches of at most 500 with float32 data and metadata', async () => {
      s3v.on(PutVectorsCommand).resolves({});
      await new S3VectorsIndex(new S3VectorsClient({}), BUCKET, 'emb-v1').put(Array.from({ length: 1200 }, (_, i) => record(i)));
      const calls = s3v.commandCalls(PutVectorsCommand);
      expect(calls.map((c) => c.args[0].input.vectors!.length)).toEqual([500, 500, 200]);
      expect(calls[0]!.args[0].input).toMatchObject({ vectorBucketName: BUCKET, indexName: 'emb-v1' });
      expect(calls[0]!.args[0].input.vectors![3]).toEqual({ key: 'id3', data: { float32: [3, 1] }, metadata: { key: 'k3', modelVersion: 'v1' } });
    });
  });

  describe('get', () => {
    it('reads in batches of 100 and returns vectors with their metadata', async () => {
      s3v.on(GetVectorsCommand).callsFake((input: { keys: string[] }) => ({
        vectors: input.keys.map((k) => ({ key: k, data: { float32: [1, 0] }, metadata: { key: k, modelVersion: 'v1', label: 'x' } })),
      }));
      const got = await new S3VectorsIndex(new S3VectorsClient({}), BUCKET, 'emb-v1').get(Array.from({ length: 150 }, (_, i) => `id${i}`));
      expect(s3v.commandCalls(GetVectorsCommand).map((c) => c.args[0].input.keys!.length)).toEqual([100, 50]);
      expect(s3v.commandCalls(GetVectorsCommand)[0]!.args[0].input).toMatchObject({ returnData: true, returnMetadata: true });
      expect(got).toHaveLength(150);
      expect(got[0]!.vector).toEqual(Float32Array.from([1, 0]));
      expect(got[0]!.metadata.label).toBe('x');
    });
  });

  describe('delete', () => {
    it('deletes in batches of at most 500', async () => {
      s3v.on(DeleteVectorsCommand).resolves({});
      await new S3VectorsIndex(new S3VectorsClient({}), BUCKET, 'emb-v1').delete(Array.from({ length: 501 }, (_, i) => `id${i}`));
      expect(s3v.commandCalls(DeleteVectorsCommand).map((c) => c.args[0].input.keys!.length)).toEqual([500, 1]);
    });
  });

  describe('query', () => {
    it('filters on label or pseudo-label, over-fetches for excluded ids and drops them', async () => {
      s3v.on(QueryVectorsCommand).resolves({
        vectors: [
          { key: 'self', distance: 0, metadata: { key: 'a', modelVersion: 'v1' } },
          { key: 'n1', distance: 0.1, metadata: { key: 'b', modelVersion: 'v1', label: 'cat' } },
          { key: 'n2', distance: 0.2, metadata: { key: 'c', modelVersion: 'v1', pseudoLabel: 'cat', confidence: 0.8 } },
        ],
      });
      const got = await new S3VectorsIndex(new S3VectorsClient({}), BUCKET, 'emb-v1').query({
        vector: Float32Array.from([1, 0]),
        topK: 2,
        label: 'cat',
        excludeIds: ['self'],
      });
      const input = s3v.commandCalls(QueryVectorsCommand)[0]!.args[0].input;
      expect(input).toMatchObject({ topK: 3, returnDistance: true, returnMetadata: true, queryVector: { float32: [1, 0] } });
      expect(input.filter).toEqual({ $or: [{ label: { $eq: 'cat' } }, { pseudoLabel: { $eq: 'cat' } }] });
      expect(got.map((m) => [m.id, m.distance])).toEqual([
        ['n1', 0.1],
        ['n2', 0.2],
      ]);
    });
  });
});

describe('S3VectorsIndex at S3 Vectors\u2019 limits', () => {
  beforeEach(() => s3v.reset());
  const index = () => new S3VectorsIndex(new S3VectorsClient({}), BUCKET, 'emb-v1');

  it('never asks for more than topK 100, even when over-fetching for excluded ids', async () => {
    s3v.on(QueryVectorsCommand).resolves({
      vectors: Array.from({ length: 100 }, (_, i) => ({
        key: i === 0 ? 'self' : `n${i}`,
        distance: i / 100,
        metadata: { key: `k${i}`, modelVersion: 'v1' },
      })),
    });
    const got = await index().query({ vector: Float32Array.from([1, 0]), topK: 100, excludeIds: ['self'] });
    expect(s3v.commandCalls(QueryVectorsCommand)[0]!.args[0].input.topK).toBe(100);
    expect(got).toHaveLength(99);
    await index().query({ vector: Float32Array.from([1, 0]), topK: 99, excludeIds: ['self'] });
    expect(s3v.commandCalls(QueryVectorsCommand)[1]!.args[0].input.topK).toBe(100);
  });

  it('keeps filterable metadata within 2 KB: the longest key (non-filterable) and labels fit, oversized filterable metadata is refused', async () => {
    s3v.on(PutVectorsCommand).resolves({});
    const longest = {
      id: 'x',
      vector: Float32Array.from([1, 0]),
      metadata: { key: 'k'.repeat(1024), modelVersion: 'v999', label: 'l'.repeat(64), pseudoLabel: 'p'.repeat(64), confidence: 0.5 },
    };
    await index().put([longest]);
    const tooMuch = { ...longest, metadata: { ...longest.metadata, label: 'l'.repeat(2100) } };
    await expect(index().put([tooMuch])).rejects.toThrow(/filterable metadata is \d+ bytes; S3 Vectors takes at most 2048/);
    expect(s3v.commandCalls(PutVectorsCommand)).toHaveLength(1);
  });

  it('refuses a topK above 100 before calling S3 Vectors', async () => {
    await expect(index().query({ vector: Float32Array.from([1, 0]), topK: 101 })).rejects.toThrow(/at most 100/);
    expect(s3v.commandCalls(QueryVectorsCommand)).toHaveLength(0);
  });

  it('puts 500 and deletes 500 vectors per call at most, gets 100 at most', async () => {
    s3v.on(PutVectorsCommand).resolves({});
    s3v.on(DeleteVectorsCommand).resolves({});
    s3v.on(GetVectorsCommand).resolves({ vectors: [] });
    await index().put(Array.from({ length: 500 }, (_, i) => record(i)));
    await index().delete(Array.from({ length: 500 }, (_, i) => `id${i}`));
    await index().get(Array.from({ length: 101 }, (_, i) => `id${i}`));
    expect(s3v.commandCalls(PutVectorsCommand).map((c) => c.args[0].input.vectors!.length)).toEqual([500]);
    expect(s3v.commandCalls(DeleteVectorsCommand).map((c) => c.args[0].input.keys!.length)).toEqual([500]);
    expect(s3v.commandCalls(GetVectorsCommand).map((c) => c.args[0].input.keys!.length)).toEqual([100, 1]);
  });
});

describe('S3VectorsStore', () => {
  beforeEach(() => s3v.reset());

  describe('ensureIndex', () => {
    it('creates a missing index as float32 cosine with non-filterable key metadata', async () => {
      s3v.on(GetIndexCommand).rejects(notFound());
      s3v.on(CreateIndexCommand).resolves({ indexArn: 'arn' });
      await new S3VectorsStore(new S3VectorsClient({}), BUCKET).ensureIndex('emb-v2', 128);
      expect(s3v.commandCalls(CreateIndexCommand)[0]!.args[0].input).toEqual({
        vectorBucketName: BUCKET,
        indexName: 'emb-v2',
        dataType: 'float32',
        dimension: 128,
        distanceMetric: 'cosine',
        metadataConfiguration: { nonFilterableMetadataKeys: ['key', 'confidence'] },
      });
    });

    it('accepts an index another container created concurrently', async () => {
      s3v.on(GetIndexCommand).rejects(notFound());
      s3v.on(CreateIndexCommand).rejects(new ConflictException({ message: 'exists', $metadata: {} }));
      await expect(new S3VectorsStore(new S3VectorsClient({}), BUCKET).ensureIndex('emb-v2', 128)).resolves.toBeDefined();
    });

    it('refuses an existing index of another dimension', async () => {
      s3v.on(GetIndexCommand).resolves({ index: { dimension: 64 } as never });
      await expect(new S3VectorsStore(new S3VectorsClient({}), BUCKET).ensureIndex('emb-v2', 128)).rejects.toThrow(/dimension 64/);
      expect(s3v.commandCalls(CreateIndexCommand)).toHaveLength(0);
    });
  });

  describe('openIndex', () => {
    it('returns undefined for a missing index', async () => {
      s3v.on(GetIndexCommand).rejects(notFound());
      expect(await new S3VectorsStore(new S3VectorsClient({}), BUCKET).openIndex('emb-v9')).toBeUndefined();
    });
  });
});

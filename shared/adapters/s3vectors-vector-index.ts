/**
 * VectorStore over Amazon S3 Vectors: one vector bucket, one index per encoder version.
 * PutVectors/DeleteVectors in batches of at most 500, GetVectors in batches of 100.
 */
import {
  ConflictException,
  CreateIndexCommand,
  DeleteIndexCommand,
  DeleteVectorsCommand,
  GetIndexCommand,
  GetVectorsCommand,
  NotFoundException,
  PutVectorsCommand,
  QueryVectorsCommand,
  paginateListIndexes,
  paginateListVectors,
  type S3VectorsClient,
} from '@aws-sdk/client-s3vectors';
import type { DocumentType } from '@smithy/types';
import { AWS_LIMITS } from '../aws-limits';
import { VectorMetadataSchema } from '../schemas';
import type { VectorIndex, VectorMatch, VectorQuery, VectorRecord, VectorStore } from '../ports/vector-index';

const { putVectorsPerCall: PUT_BATCH, deleteVectorsPerCall: DELETE_BATCH, getVectorsPerCall: GET_BATCH, maxTopK: MAX_TOP_K } = AWS_LIMITS.s3Vectors;
/** Metadata only returned, never filtered on: keeps filterable metadata within its size limit. */
const NON_FILTERABLE_KEYS = ['key', 'confidence'];

export class S3VectorsIndex implements VectorIndex {
  constructor(
    private readonly client: S3VectorsClient,
    private readonly vectorBucketName: string,
    readonly name: string,
  ) {}

  async put(records: VectorRecord[]): Promise<void> {
    for (const r of records) checkMetadata(r);
    for (let i = 0; i < records.length; i += PUT_BATCH) {
      const chunk = records.slice(i, i + PUT_BATCH);
      await this.client.send(
        new PutVectorsCommand({
          vectorBucketName: this.vectorBucketName,
          indexName: this.name,
          vectors: chunk.map((r) => ({
            key: r.id,
            data: { float32: Array.from(r.vector) },
            metadata: compact(r.metadata) as DocumentType,
          })),
        }),
      );
    }
  }

  async get(ids: string[]): Promise<VectorRecord[]> {
    const out: VectorRecord[] = [];
    const unique = [...new Set(ids)];
    for (let i = 0; i < unique.length; i += GET_BATCH) {
      const res = await this.client.send(
        new GetVectorsCommand({
          vectorBucketName: this.vectorBucketName,
          indexName: this.name,
          keys: unique.slice(i, i + GET_BATCH),
          returnData: true,
          returnMetadata: true,
        }),
      );
      for (const v of res.vectors ?? []) {
        if (!v.key || !v.data?.float32) continue;
        out.push({ id: v.key, vector: Float32Array.from(v.data.float32), metadata: VectorMetadataSchema.parse(v.metadata) });
      }
    }
    return out;
  }

  async delete(ids: string[]): Promise<void> {
    for (let i = 0; i < ids.length; i += DELETE_BATCH) {
      await this.client.send(new DeleteVectorsCommand({ vectorBucketName: this.vectorBucketName, indexName: this.name, keys: ids.slice(i, i + DELETE_BATCH) }));
    }
  }

  async query(q: VectorQuery): Promise<VectorMatch[]> {
    const exclude = new Set(q.excludeIds ?? []);
    if (q.topK > MAX_TOP_K) throw new RangeError(`S3 Vectors returns at most ${MAX_TOP_K} neighbours per query, asked for ${q.topK}`);
    // Over-fetch for the excluded ids, within S3 Vectors' topK limit: at k = 100 with the query image
    // excluded, 99 neighbours come back (the image itself takes one of the 100 places).
    const wanted = Math.min(MAX_TOP_K, q.topK + exclude.size);
    const filter: DocumentType | undefined = q.label === undefined ? undefined : { $or: [{ label: { $eq: q.label } }, { pseudoLabel: { $eq: q.label } }] };
    const matches: VectorMatch[] = [];
    let nextToken: string | undefined;
    do {
      const res = await this.client.send(
        new QueryVectorsCommand({
          vectorBucketName: this.vectorBucketName,
          indexName: this.name,
          queryVector: { float32: Array.from(q.vector) },
          topK: wanted,
          filter,
          returnDistance: true,
          returnMetadata: true,
          nextToken,
        }),
      );
      for (const v of res.vectors ?? []) {
        if (!v.key || exclude.has(v.key)) continue;
        matches.push({ id: v.key, distance: v.distance ?? Number.NaN, metadata: VectorMetadataSchema.parse(v.metadata) });
      }
      nextToken = res.nextToken;
    } while (nextToken && matches.length < q.topK);
    return matches.slice(0, q.topK);
  }

  async *listIds(): AsyncIterable<string> {
    const pages = paginateListVectors({ client: this.client }, { vectorBucketName: this.vectorBucketName, indexName: this.name, maxResults: 1000 });
    for await (const page of pages) {
      for (const v of page.vectors ?? []) if (v.key) yield v.key;
    }
  }

  async count(): Promise<number> {
    let n = 0;
    for await (const _id of this.listIds()) n += 1;
    return n;
  }
}

export class S3VectorsStore implements VectorStore {
  constructor(
    private readonly client: S3VectorsClient,
    private readonly vectorBucketName: string,
  ) {}

  async ensureIndex(name: string, dimension: number): Promise<VectorIndex> {
    try {
      const res = await this.client.send(new GetIndexCommand({ vectorBucketName: this.vectorBucketName, indexName: name }));
      const existing = res.index?.dimension;
      if (existing !== undefined && existing !== dimension) {
        throw new Error(`index ${name} exists with dimension ${existing}, not ${dimension}`);
      }
    } catch (err) {
      if (!(err instanceof NotFoundException)) throw err;
      try {
        await this.client.send(
          new CreateIndexCommand({
            vectorBucketName: this.vectorBucketName,
            indexName: name,
            dataType: 'float32',
            dimension,
            distanceMetric: 'cosine',
            metadataConfiguration: { nonFilterableMetadataKeys: NON_FILTERABLE_KEYS },
          }),
        );
      } catch (createErr) {
        // Another container created it first.
        if (!(createErr instanceof ConflictException)) throw createErr;
      }
    }
    return new S3VectorsIndex(this.client, this.vectorBucketName, name);
  }

  async openIndex(name: string): Promise<VectorIndex | undefined> {
    try {
      await this.client.send(new GetIndexCommand({ vectorBucketName: this.vectorBucketName, indexName: name }));
      return new S3VectorsIndex(this.client, this.vectorBucketName, name);
    } catch (err) {
      if (err instanceof NotFoundException) return undefined;
      throw err;
    }
  }

  async deleteIndex(name: string): Promise<void> {
    try {
      await this.client.send(new DeleteIndexCommand({ vectorBucketName: this.vectorBucketName, indexName: name }));
    } catch (err) {
      if (!(err instanceof NotFoundException)) throw err;
    }
  }

  async listIndexes(): Promise<string[]> {
    const names: string[] = [];
    for await (const page of paginateListIndexes({ client: this.client }, { vectorBucketName: this.vectorBucketName })) {
      for (const idx of page.indexes ?? []) if (idx.indexName) names.push(idx.indexName);
    }
    return names.sort();
  }
}

/** S3 Vectors rejects undefined metadata values. */
function compact(metadata: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(metadata).filter(([, v]) => v !== undefined));
}

/**
 * S3 Vectors' per-vector metadata limits: 2 KB filterable, 40 KB in all. The schema keeps ours far
 * below (labels of 64 characters, keys of 1024 bytes, non-filterable), checked here anyway so that
 * a change that breaks them fails with the vector's id rather than S3 Vectors' ValidationException.
 */
export function checkMetadata(record: VectorRecord): void {
  const metadata = compact(record.metadata);
  const total = Buffer.byteLength(JSON.stringify(metadata));
  const filterable = Buffer.byteLength(JSON.stringify(Object.fromEntries(Object.entries(metadata).filter(([k]) => !NON_FILTERABLE_KEYS.includes(k)))));
  const { totalMetadataBytes, filterableMetadataBytes } = AWS_LIMITS.s3Vectors;
  if (total > totalMetadataBytes) throw new RangeError(`vector ${record.id}: metadata is ${total} bytes; S3 Vectors takes at most ${totalMetadataBytes}`);
  if (filterable > filterableMetadataBytes) {
    throw new RangeError(`vector ${record.id}: filterable metadata is ${filterable} bytes; S3 Vectors takes at most ${filterableMetadataBytes}`);
  }
}

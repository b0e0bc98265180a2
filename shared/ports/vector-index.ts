import type { VectorMetadata } from '../schemas';

/** A vector with its id (the imageId) and metadata. Vectors are L2-normalised. */
export interface VectorRecord {
  id: string;
  vector: Float32Array;
  metadata: VectorMetadata;
}

export interface VectorMatch {
  id: string;
  /** Cosine distance, 1 - cos(query, vector): 0 identical, 2 opposite. */
  distance: number;
  metadata: VectorMetadata;
}

export interface VectorQuery {
  vector: Float32Array;
  topK: number;
  /** Only vectors whose human label or pseudo-label equals this value. */
  label?: string;
  /** Ids never returned (the query image itself). */
  excludeIds?: string[];
}

/** One index: the vectors of one encoder version. */
export interface VectorIndex {
  readonly name: string;
  /** Insert or replace by id. */
  put(records: VectorRecord[]): Promise<void>;
  /** Records for the ids that exist, in no particular order. */
  get(ids: string[]): Promise<VectorRecord[]>;
  /** Deleting missing ids succeeds. */
  delete(ids: string[]): Promise<void>;
  query(q: VectorQuery): Promise<VectorMatch[]>;
  /** Every id in the index. */
  listIds(): AsyncIterable<string>;
  count(): Promise<number>;
}

/** The set of indexes, one per encoder version. */
export interface VectorStore {
  /** Creates the index if missing; a no-op when it exists with this dimension. */
  ensureIndex(name: string, dimension: number): Promise<VectorIndex>;
  /** The index, or undefined when it does not exist. */
  openIndex(name: string): Promise<VectorIndex | undefined>;
  deleteIndex(name: string): Promise<void>;
  listIndexes(): Promise<string[]>;
}

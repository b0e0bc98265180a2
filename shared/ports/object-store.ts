/** Object storage (S3 in both deployments: AWS, or the embedded S3-compatible server). */
export interface ObjectInfo {
  key: string;
  size: number;
  etag: string;
  lastModified?: Date;
  contentType?: string;
}

export interface ObjectStore {
  /** Object metadata, or undefined when the key does not exist. */
  head(bucket: string, key: string): Promise<ObjectInfo | undefined>;
  /** Object bytes, or undefined when the key does not exist. */
  get(bucket: string, key: string): Promise<Buffer | undefined>;
  put(bucket: string, key: string, body: Buffer | string, contentType?: string): Promise<void>;
  /**
   * Conditional put: `ifMatch: '*'` writes only if the key does not exist (If-None-Match: *), an
   * ETag writes only if the object still has it (If-Match). False when the condition failed.
   */
  putIf(bucket: string, key: string, body: Buffer | string, condition: { ifAbsent: true } | { ifMatch: string }, contentType?: string): Promise<boolean>;
  /** Deleting a missing key succeeds. */
  delete(bucket: string, key: string): Promise<void>;
  deleteMany(bucket: string, keys: string[]): Promise<void>;
  /** All objects under a prefix, in key order, optionally only those after `startAfter`. */
  list(bucket: string, prefix?: string, startAfter?: string): AsyncIterable<ObjectInfo>;
}

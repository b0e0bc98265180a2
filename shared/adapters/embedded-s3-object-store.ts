/**
 * ObjectStore over the embedded S3 server's storage, in process: the same objects, key locks,
 * conditional writes, durability and events as over HTTP, without a loopback round trip, SigV4
 * signing, checksums and XML per call. The embedded stack's own workers use it; users, the CLI and
 * the trainer reach the same storage over the S3 wire protocol.
 */
import type { ObjectStorage, StoredObject } from '../../local/s3/storage';
import type { ObjectInfo, ObjectStore } from '../ports/object-store';

function infoOf(meta: StoredObject): ObjectInfo {
  return { key: meta.key, size: meta.size, etag: meta.etag, lastModified: new Date(meta.lastModified), contentType: meta.contentType };
}

/** A refused precondition (412), or If-Match on a key that does not exist (404). */
function isConditionFailure(err: unknown): boolean {
  const status = (err as { status?: number }).status;
  const code = (err as { code?: string }).code;
  return status === 412 || (status === 404 && code === 'NoSuchKey');
}

export class EmbeddedS3ObjectStore implements ObjectStore {
  constructor(private readonly storage: ObjectStorage) {}

  async head(bucket: string, key: string): Promise<ObjectInfo | undefined> {
    const meta = this.storage.head(bucket, key);
    return meta ? infoOf(meta) : undefined;
  }

  get(bucket: string, key: string): Promise<Buffer | undefined> {
    return this.storage.readAll(bucket, key);
  }

  async put(bucket: string, key: string, body: Buffer | string, contentType = 'application/octet-stream'): Promise<void> {
    await this.storage.putBuffer(bucket, key, Buffer.from(body), { contentType, userMetadata: {} });
  }

  async putIf(
    bucket: string,
    key: string,
    body: Buffer | string,
    condition: { ifAbsent: true } | { ifMatch: string },
    contentType = 'application/octet-stream',
  ): Promise<boolean> {
    try {
      await this.storage.putBuffer(
        bucket,
        key,
        Buffer.from(body),
        { contentType, userMetadata: {} },
        'ifAbsent' in condition ? { ifNoneMatch: '*' } : { ifMatch: condition.ifMatch },
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  async delete(bucket: string, key: string): Promise<void> {
    await this.storage.remove(bucket, key);
  }

  async deleteMany(bucket: string, keys: string[]): Promise<void> {
    for (const key of keys) await this.storage.remove(bucket, key);
  }

  async *list(bucket: string, prefix = '', startAfter = ''): AsyncIterable<ObjectInfo> {
    for (const meta of this.storage.iterate(bucket, prefix, startAfter)) yield infoOf(meta);
  }
}

import { DeleteObjectsCommand, GetObjectCommand, HeadObjectCommand, NoSuchKey, NotFound, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { S3ObjectStore } from '../../../../shared/adapters/s3-object-store';

const s3 = mockClient(S3Client);

describe('S3ObjectStore', () => {
  beforeEach(() => s3.reset());

  describe('head', () => {
    it('returns size and unquoted ETag, or undefined for a missing key', async () => {
      s3.on(HeadObjectCommand, { Key: 'a' }).resolves({ ContentLength: 5, ETag: '"abc"' });
      s3.on(HeadObjectCommand, { Key: 'b' }).rejects(new NotFound({ message: 'nf', $metadata: { httpStatusCode: 404 } }));
      const store = new S3ObjectStore(new S3Client({}));
      expect(await store.head('bucket', 'a')).toMatchObject({ key: 'a', size: 5, etag: 'abc' });
      expect(await store.head('bucket', 'b')).toBeUndefined();
    });
  });

  describe('get', () => {
    it('returns undefined for NoSuchKey and rethrows other errors', async () => {
      s3.on(GetObjectCommand, { Key: 'gone' }).rejects(new NoSuchKey({ message: 'nsk', $metadata: { httpStatusCode: 404 } }));
      s3.on(GetObjectCommand, { Key: 'boom' }).rejects(new Error('throttled'));
      const store = new S3ObjectStore(new S3Client({}));
      expect(await store.get('bucket', 'gone')).toBeUndefined();
      await expect(store.get('bucket', 'boom')).rejects.toThrow('throttled');
    });
  });

  describe('deleteMany', () => {
    it('deletes in batches of 1000 and surfaces per-key errors', async () => {
      s3.on(DeleteObjectsCommand).resolves({});
      const store = new S3ObjectStore(new S3Client({}));
      await store.deleteMany(
        'bucket',
        Array.from({ length: 2001 }, (_, i) => `k${i}`),
      );
      expect(s3.commandCalls(DeleteObjectsCommand).map((c) => c.args[0].input.Delete!.Objects!.length)).toEqual([1000, 1000, 1]);
      s3.reset();
      s3.on(DeleteObjectsCommand).resolves({ Errors: [{ Key: 'k0', Code: 'AccessDenied' }] });
      await expect(store.deleteMany('bucket', ['k0'])).rejects.toThrow(/AccessDenied/);
    });
  });
});

/** An S3 client for the embedded stack's S3-compatible server: path-style, placeholder credentials (any are accepted). */
import { S3Client } from '@aws-sdk/client-s3';

export function localS3Client(endpoint: string): S3Client {
  return new S3Client({ endpoint, forcePathStyle: true, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' }, maxAttempts: 5 });
}

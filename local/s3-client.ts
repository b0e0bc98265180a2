/** An S3 client for the embedded stack's S3-compatible server: path-style, fixed local credentials (the server accepts any). */
import { S3Client } from '@aws-sdk/client-s3';
import { clientPolicy } from '../shared/aws-client-config';

export function localS3Client(endpoint: string, policy = clientPolicy()): S3Client {
  return new S3Client({ endpoint, forcePathStyle: true, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' }, ...policy });
}

/** S3 event notification records, as S3 delivers them to SQS (keys URL-encoded, '+' for spaces). */
export interface S3EventInput {
  eventName: 'ObjectCreated:Put' | 'ObjectCreated:Copy' | 'ObjectCreated:CompleteMultipartUpload' | 'ObjectRemoved:Delete';
  bucket: string;
  key: string;
  size?: number;
  etag?: string;
  sequencer: string;
  time?: Date;
  region?: string;
}

export function encodeEventKey(key: string): string {
  return encodeURIComponent(key).replace(/%20/g, '+').replace(/%2F/g, '/');
}

export function decodeEventKey(key: string): string {
  return decodeURIComponent(key.replace(/\+/g, ' '));
}

export function s3EventRecord(e: S3EventInput) {
  const created = e.eventName.startsWith('ObjectCreated');
  return {
    eventVersion: '2.1',
    eventSource: 'aws:s3' as const,
    awsRegion: e.region ?? 'us-east-1',
    eventTime: (e.time ?? new Date()).toISOString(),
    eventName: e.eventName,
    userIdentity: { principalId: 'local' },
    requestParameters: { sourceIPAddress: '127.0.0.1' },
    responseElements: { 'x-amz-request-id': e.sequencer, 'x-amz-id-2': e.sequencer },
    s3: {
      s3SchemaVersion: '1.0',
      configurationId: 'images-to-ingest',
      bucket: { name: e.bucket, ownerIdentity: { principalId: 'local' }, arn: `arn:aws:s3:::${e.bucket}` },
      object: {
        key: encodeEventKey(e.key),
        ...(created ? { size: e.size ?? 0, eTag: e.etag ?? '' } : {}),
        sequencer: e.sequencer,
      },
    },
  };
}

/** The SQS message body S3 sends for one record. */
export function s3EventBody(e: S3EventInput): string {
  return JSON.stringify({ Records: [s3EventRecord(e)] });
}

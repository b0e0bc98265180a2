/**
 * Which S3 operation a request is, from its method, target (service, bucket, object), query
 * sub-resources and headers, and what the embedded server refuses to pretend it does.
 *
 * S3 selects many operations by a query sub-resource (`PUT /b/k?tagging` is PutObjectTagging, not
 * PutObject). A sub-resource this server does not implement, or a header that asks for behaviour
 * it does not have (tagging, object lock, KMS or customer keys, ACL grants, other storage
 * classes), answers 501 NotImplemented before anything is read or written: an unsupported request
 * never falls through to a plain object write or delete and never emits an event.
 */
import type { IncomingMessage } from 'node:http';
import { S3Error, invalidArgument, notImplemented } from './errors';

export type OperationName =
  | 'ListBuckets'
  | 'CreateBucket'
  | 'DeleteBucket'
  | 'HeadBucket'
  | 'GetBucketLocation'
  | 'ListObjects'
  | 'ListObjectsV2'
  | 'ListObjectVersions'
  | 'ListMultipartUploads'
  | 'DeleteObjects'
  | 'PutObject'
  | 'CopyObject'
  | 'GetObject'
  | 'HeadObject'
  | 'DeleteObject'
  | 'CreateMultipartUpload'
  | 'UploadPart'
  | 'UploadPartCopy'
  | 'CompleteMultipartUpload'
  | 'AbortMultipartUpload'
  | 'ListParts'
  | 'GetBucketAcl'
  | 'GetObjectAcl'
  | 'PutBucketAcl'
  | 'PutObjectAcl';

/** Every S3 query sub-resource (the names that select an operation or a configuration). */
export const S3_SUBRESOURCES = [
  'abac',
  'accelerate',
  'acl',
  'analytics',
  'attributes',
  'cors',
  'delete',
  'encryption',
  'intelligent-tiering',
  'inventory',
  'legal-hold',
  'lifecycle',
  'location',
  'logging',
  'metadataConfiguration',
  'metadataInventoryTable',
  'metadataJournalTable',
  'metadataTable',
  'metrics',
  'notification',
  'object-lock',
  'ownershipControls',
  'partNumber',
  'policy',
  'policyStatus',
  'publicAccessBlock',
  'renameObject',
  'replication',
  'requestPayment',
  'restore',
  'retention',
  'select',
  'select-type',
  'session',
  'tagging',
  'torrent',
  'uploadId',
  'uploads',
  'versionId',
  'versioning',
  'versions',
  'website',
] as const;
const SUBRESOURCES = new Set<string>(S3_SUBRESOURCES);

const RESPONSE_OVERRIDES = [
  'response-cache-control',
  'response-content-disposition',
  'response-content-encoding',
  'response-content-language',
  'response-content-type',
  'response-expires',
];

/** Query parameters each operation understands (its sub-resource included). */
const PARAMS: Record<OperationName, readonly string[]> = {
  ListBuckets: ['max-buckets', 'continuation-token', 'prefix', 'bucket-region'],
  CreateBucket: [],
  DeleteBucket: [],
  HeadBucket: [],
  GetBucketLocation: ['location'],
  ListObjects: ['prefix', 'delimiter', 'marker', 'max-keys', 'encoding-type'],
  ListObjectsV2: ['list-type', 'prefix', 'delimiter', 'max-keys', 'encoding-type', 'continuation-token', 'start-after', 'fetch-owner'],
  ListObjectVersions: ['versions', 'prefix', 'delimiter', 'key-marker', 'version-id-marker', 'max-keys', 'encoding-type'],
  ListMultipartUploads: ['uploads', 'prefix', 'delimiter', 'key-marker', 'upload-id-marker', 'max-uploads', 'encoding-type'],
  DeleteObjects: ['delete'],
  PutObject: [],
  CopyObject: [],
  GetObject: ['partNumber', 'versionId', ...RESPONSE_OVERRIDES],
  HeadObject: ['partNumber', 'versionId', ...RESPONSE_OVERRIDES],
  DeleteObject: ['versionId'],
  CreateMultipartUpload: ['uploads'],
  UploadPart: ['uploadId', 'partNumber'],
  UploadPartCopy: ['uploadId', 'partNumber'],
  CompleteMultipartUpload: ['uploadId'],
  AbortMultipartUpload: ['uploadId'],
  ListParts: ['uploadId', 'max-parts', 'part-number-marker', 'encoding-type'],
  GetBucketAcl: ['acl'],
  GetObjectAcl: ['acl', 'versionId'],
  PutBucketAcl: ['acl'],
  PutObjectAcl: ['acl', 'versionId'],
};

/** Query parameters that carry no meaning for the operation: the SDKs' x-id, presigned URL signatures. */
function isPassive(name: string): boolean {
  return name === 'x-id' || /^x-amz-/i.test(name) || name === 'AWSAccessKeyId' || name === 'Signature' || name === 'Expires';
}

export type Target = { kind: 'service' } | { kind: 'bucket'; bucket: string } | { kind: 'object'; bucket: string; key: string };

const methodNotAllowed = (method: string) => new S3Error(405, 'MethodNotAllowed', `The specified method is not allowed against this resource: ${method}`);

function choose(method: string, target: Target, q: URLSearchParams, req: IncomingMessage): OperationName {
  const has = (name: string) => q.has(name);
  if (target.kind === 'service') {
    if (method === 'GET') return 'ListBuckets';
    throw methodNotAllowed(method);
  }
  if (target.kind === 'bucket') {
    switch (method) {
      case 'GET':
        if (has('location')) return 'GetBucketLocation';
        if (has('acl')) return 'GetBucketAcl';
        if (has('uploads')) return 'ListMultipartUploads';
        if (has('versions')) return 'ListObjectVersions';
        return q.get('list-type') === '2' ? 'ListObjectsV2' : 'ListObjects';
      case 'HEAD':
        return 'HeadBucket';
      case 'PUT':
        return has('acl') ? 'PutBucketAcl' : 'CreateBucket';
      case 'DELETE':
        return 'DeleteBucket';
      case 'POST':
        if (has('delete')) return 'DeleteObjects';
        throw notImplemented('POST on a bucket (browser form uploads)');
      default:
        throw methodNotAllowed(method);
    }
  }
  const copy = req.headers['x-amz-copy-source'] !== undefined;
  switch (method) {
    case 'GET':
      if (has('acl')) return 'GetObjectAcl';
      return has('uploadId') ? 'ListParts' : 'GetObject';
    case 'HEAD':
      return 'HeadObject';
    case 'PUT':
      if (has('acl')) return 'PutObjectAcl';
      if (has('uploadId') || has('partNumber')) return copy ? 'UploadPartCopy' : 'UploadPart';
      return copy ? 'CopyObject' : 'PutObject';
    case 'DELETE':
      return has('uploadId') ? 'AbortMultipartUpload' : 'DeleteObject';
    case 'POST':
      if (has('uploads')) return 'CreateMultipartUpload';
      if (has('uploadId')) return 'CompleteMultipartUpload';
      throw notImplemented(`POST on an object with ${[...q.keys()].map((k) => `?${k}`).join(' ') || 'no sub-resource'}`);
    default:
      throw methodNotAllowed(method);
  }
}

const MUTATING = new Set(['PUT', 'POST', 'DELETE']);
const WRITES_OBJECT = new Set<OperationName>(['PutObject', 'CopyObject', 'CreateMultipartUpload']);

const CANNED_ACLS = [
  'private',
  'public-read',
  'public-read-write',
  'authenticated-read',
  'aws-exec-read',
  'bucket-owner-read',
  'bucket-owner-full-control',
  'log-delivery-write',
];

/** Header values this server accepts because they ask for what it does anyway. */
const HARMLESS: Record<string, (value: string) => boolean> = {
  // There is no access control here (any credentials, or none, can read and write), so every canned
  // ACL describes what the server does anyway; explicit grants (x-amz-grant-*) are refused.
  'x-amz-acl': (v) => CANNED_ACLS.includes(v),
  'x-amz-storage-class': (v) => v === 'STANDARD',
  'x-amz-server-side-encryption': (v) => v === 'AES256',
  'x-amz-tagging-directive': (v) => v === 'COPY',
  'x-amz-bucket-object-lock-enabled': (v) => v.toLowerCase() === 'false',
  'x-amz-object-ownership': (v) => v === 'BucketOwnerEnforced',
};

/** Headers that ask for behaviour this server does not have, whatever their value. */
const UNSUPPORTED_HEADERS = [
  /^x-amz-tagging$/,
  /^x-amz-object-lock-/,
  /^x-amz-grant-/,
  /^x-amz-website-redirect-location$/,
  /^x-amz-write-offset-bytes$/,
  /^x-amz-server-side-encryption-/,
  /^x-amz-copy-source-server-side-encryption-customer-/,
];

function checkHeaders(req: IncomingMessage, op: OperationName): void {
  if (!WRITES_OBJECT.has(op) && !['CreateBucket', 'UploadPart', 'UploadPartCopy', 'PutBucketAcl', 'PutObjectAcl'].includes(op)) return;
  for (const [name, value] of Object.entries(req.headers)) {
    if (typeof value !== 'string') continue;
    const harmless = HARMLESS[name];
    if (harmless) {
      if (!harmless(value)) throw notImplemented(`${name}: ${value}`);
      continue;
    }
    if (UNSUPPORTED_HEADERS.some((re) => re.test(name))) throw notImplemented(name);
  }
}

/** The operation a request asks for; 501 NotImplemented for what this server does not implement. */
export function resolveOperation(method: string, target: Target, q: URLSearchParams, req: IncomingMessage): OperationName {
  const op = choose(method, target, q, req);
  const accepted = PARAMS[op];
  for (const name of new Set(q.keys())) {
    if (accepted.includes(name)) continue;
    if (SUBRESOURCES.has(name))
      throw notImplemented(`?${name} with ${method} on ${target.kind === 'object' ? 'an object' : target.kind === 'bucket' ? 'a bucket' : 'the service'}`);
    if (MUTATING.has(method) && !isPassive(name)) throw notImplemented(`query parameter ${name} on ${op}`);
  }
  const versionId = q.get('versionId');
  if (versionId !== null && versionId !== 'null')
    throw invalidArgument('Invalid version id specified (versioning is not supported: every object has version "null")');
  checkHeaders(req, op);
  return op;
}

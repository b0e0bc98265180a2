import { createHash } from 'node:crypto';

/** Stable id of an image: a hash of its object key, so re-uploading a key overwrites its vector. */
export function imageIdForKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex').slice(0, 32);
}

/** Vector index name for a model version (S3 Vectors: 3-63 chars of lowercase, digits, '-', '.'). */
export function indexNameForVersion(version: string): string {
  return `emb-${version}`;
}

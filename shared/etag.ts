/** A strong HTTP validator of some bytes (quoted, for the ETag header): the console's files and thumbnails. */
import { createHash } from 'node:crypto';

export function strongEtag(bytes: Buffer): string {
  return `"${createHash('sha256').update(bytes).digest('base64url').slice(0, 27)}"`;
}

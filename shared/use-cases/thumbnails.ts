/** `GET /thumbnails?key=`: the small WebP augment made at ingest (derived/<imageId>/thumb.webp), never the original. */
import { artifactKeys } from '../artifact-keys';
import { strongEtag } from '../etag';
import { NotFoundError } from '../errors';
import { imageIdForKey } from '../ids';
import { parseJsonObject } from '../json';
import { QuarantineRecordSchema } from '../schemas';
import type { BucketsDeps } from './deps';

export interface Thumbnail {
  webp: Buffer;
  /** A strong validator of these bytes (quoted, for the ETag header). */
  etag: string;
}

export async function thumbnailOf(deps: BucketsDeps, key: string): Promise<Thumbnail> {
  const imageId = imageIdForKey(key);
  const webp = await deps.store.get(deps.artifactsBucket, artifactKeys.derivedThumbnail(imageId));
  if (webp) return { webp, etag: strongEtag(webp) };
  if (!(await deps.store.head(deps.imagesBucket, key))) throw new NotFoundError(`no image with key "${key}"`);
  const quarantined = await deps.store.get(deps.artifactsBucket, artifactKeys.quarantine(imageId));
  if (quarantined) {
    throw new NotFoundError(`image "${key}" has no thumbnail: it is quarantined (${parseJsonObject(quarantined, QuarantineRecordSchema).reason})`);
  }
  throw new NotFoundError(`image "${key}" has no thumbnail yet: it has not been processed`);
}

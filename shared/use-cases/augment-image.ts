/**
 * augment: one S3 object event -> canonical image + K augmented views in `derived/`, then a
 * message on the embed queue. Removals delete the image's vectors and derived artifacts.
 *
 * Idempotent: the views are seeded by image id and ETag, so a duplicate event rewrites identical
 * files; a created-event for an object that is gone, or a removed-event for a key that exists
 * again, is stale and skipped.
 *
 * Ordering: every event is recorded in the image's event ledger by its S3 sequencer; an event
 * older than the recorded one is stale and does nothing. A worker that finishes writing and finds
 * a newer event recorded meanwhile (its writes may have landed after the newer event's) redoes the
 * newest event's work itself, so the last writer always leaves the newest state.
 */
import { artifactKeys } from '../artifact-keys';
import { QUARANTINE_COUNTER, StoredCounters } from '../counters';
import { UnprocessableImageError } from '../errors';
import { imageIdForKey } from '../ids';
import { renderViews } from '../image/augment-views';
import type { RgbImage } from '../image/decode';
import { newerEvent, recordEvent } from './event-ledger';
import { MIGRATION_SEQUENCER_PREFIX } from './derived-migration';
import {
  CANONICAL_FILE,
  DERIVED_LAYOUT_VERSION,
  THUMBNAIL_FILE,
  VIEWS_FILE,
  decodeToWorking,
  encodeCanonical,
  encodeThumbnail,
  packViews,
  viewSideFor,
  viewStride,
} from '../derived-layout';
import { recordUpload } from './catalog';
import type { IndexResolver } from '../index-resolver';
import type { ModelCatalog } from '../model-registry';
import type { Queue } from '../ports/queue';
import type { CanonicalHandoff } from '../canonical-handoff';
import type { PipelineSettings } from '../config';
import type { DerivedMetaV2, EmbedMessage, QuarantineRecord } from '../schemas';
import { nowOf } from '../clock';
import type { ArtifactsDeps, Clock } from './deps';

export interface ObjectEvent {
  kind: 'created' | 'removed';
  bucket: string;
  key: string;
  sequencer: string;
  /** When S3 recorded the event (the upload), for the end-to-end lag metric. */
  time?: string;
}

export interface AugmentDeps extends ArtifactsDeps, Clock {
  /** Which models serve (their vectors are removed with an image): augment never loads an encoder. */
  models: ModelCatalog;
  indexes: IndexResolver;
  embedQueue: Queue;
  settings: PipelineSettings;
  /** The embedded stack: working images handed to embed in process (it skips reading them back). */
  handoff?: CanonicalHandoff;
}

export type AugmentOutcome = 'augmented' | 'quarantined' | 'deleted' | 'stale';

const MAX_REDOS = 5;

export async function augmentImage(deps: AugmentDeps, event: ObjectEvent): Promise<AugmentOutcome> {
  const imageId = imageIdForKey(event.key);
  const now = nowOf(deps);
  const verdict = await recordEvent(deps, imageId, { key: event.key, kind: event.kind, sequencer: event.sequencer, at: now.toISOString() });
  if (verdict === 'stale') return 'stale';
  let current = event;
  for (let redo = 0; redo <= MAX_REDOS; redo += 1) {
    const { outcome, embed } = await applyEvent(deps, imageId, current, now);
    const newer = await newerEvent(deps, imageId, current.sequencer);
    if (!newer) {
      // Only the newest event's derived files are handed to embed.
      if (embed) await deps.embedQueue.send([embed]);
      return outcome;
    }
    // A newer event was recorded while this one was applied: make sure its state is the one left.
    current = { kind: newer.kind, bucket: event.bucket, key: event.key, sequencer: newer.sequencer };
  }
  throw new Error(`events for ${event.key} kept arriving while it was processed; retrying the message`);
}

/** Brings the derived state in line with one event; `embed`: the message to send if it is still the newest. */
async function applyEvent(deps: AugmentDeps, imageId: string, event: ObjectEvent, now: Date): Promise<{ outcome: AugmentOutcome; embed?: EmbedMessage }> {
  const head = await deps.store.head(event.bucket, event.key);
  if (event.kind === 'removed') {
    if (head) return { outcome: 'stale' };
    await removeImage(deps, imageId);
    return { outcome: 'deleted' };
  }
  if (!head) {
    // Gone since: whatever an earlier worker derived from it must not outlive it.
    await removeImage(deps, imageId, { keepLabel: true });
    return { outcome: 'stale' };
  }
  // Listed in GET /images from now on, whatever becomes of it (pending, indexed or quarantined).
  await recordUpload(deps, imageId, event.key, head, now);

  if (head.size > deps.settings.maxImageBytes) {
    await quarantine(deps, imageId, {
      key: event.key,
      reason: `object is ${head.size} bytes; the limit is ${deps.settings.maxImageBytes}`,
      at: now.toISOString(),
      etag: head.etag,
    });
    return { outcome: 'quarantined' };
  }
  const bytes = await deps.store.get(event.bucket, event.key);
  if (!bytes) return { outcome: 'stale' };

  const sizes = deps.settings.derived;
  let canonicalPng: Buffer;
  let viewsJpeg: Buffer | undefined;
  let thumbnail: { webp: Buffer; width: number; height: number };
  let meta: DerivedMetaV2;
  let workingImage: RgbImage;
  try {
    const { decoded, working } = await decodeToWorking(bytes, deps.settings.maxImagePixels, sizes);
    workingImage = working;
    const side = viewSideFor(working, sizes.viewSize);
    const count = deps.settings.augmentViews;
    const views = count > 0 ? await renderViews(decoded, { side }, count, `${imageId}:${head.etag}`) : [];
    [canonicalPng, viewsJpeg, thumbnail] = await Promise.all([
      encodeCanonical(working),
      views.length > 0 ? packViews(views, side) : undefined,
      encodeThumbnail(working),
    ]);
    meta = {
      schemaVersion: DERIVED_LAYOUT_VERSION,
      key: event.key,
      imageId,
      etag: head.etag,
      sequencer: event.sequencer,
      source: { width: decoded.sourceWidth ?? decoded.width, height: decoded.sourceHeight ?? decoded.height, format: decoded.format, bytes: bytes.length },
      working: { size: sizes.workingSize, viewSize: sizes.viewSize },
      canonical: { file: CANONICAL_FILE, width: working.width, height: working.height },
      views: { file: VIEWS_FILE, count, size: side, stride: viewStride(side) },
      thumbnail: { file: THUMBNAIL_FILE, width: thumbnail.width, height: thumbnail.height },
      createdAt: now.toISOString(),
    };
  } catch (err) {
    if (!(err instanceof UnprocessableImageError)) throw err;
    await quarantine(deps, imageId, { key: event.key, reason: err.reason, at: now.toISOString(), etag: head.etag });
    return { outcome: 'quarantined' };
  }

  // The files first, the meta last: a reader that finds the meta finds complete files.
  await Promise.all([
    deps.store.put(deps.artifactsBucket, artifactKeys.derivedCanonical(imageId), canonicalPng, 'image/png'),
    viewsJpeg ? deps.store.put(deps.artifactsBucket, artifactKeys.derivedViews(imageId), viewsJpeg, 'image/jpeg') : undefined,
    deps.store.put(deps.artifactsBucket, artifactKeys.derivedThumbnail(imageId), thumbnail.webp, 'image/webp'),
  ]);
  await deps.store.put(deps.artifactsBucket, artifactKeys.derivedMeta(imageId), JSON.stringify(meta), 'application/json');
  // Views of an earlier upload when this configuration writes none (AUGMENT_VIEWS=0).
  if (!viewsJpeg) await deps.store.delete(deps.artifactsBucket, artifactKeys.derivedViews(imageId));
  // A migration's event: layout 1's file is read by nothing once the new meta is written.
  if (event.sequencer.startsWith(MIGRATION_SEQUENCER_PREFIX)) await deps.store.delete(deps.artifactsBucket, artifactKeys.derivedViewsV1(imageId));
  await unquarantine(deps, imageId);
  deps.handoff?.offer(imageId, head.etag, event.sequencer, workingImage);
  return { outcome: 'augmented', embed: { key: event.key, imageId, sequencer: event.sequencer, ...(event.time ? { uploadedAt: event.time } : {}) } };
}

async function quarantine(deps: AugmentDeps, imageId: string, record: QuarantineRecord): Promise<void> {
  const key = artifactKeys.quarantine(imageId);
  const body = JSON.stringify(record);
  // Counted once per image (GET /health reads the counter, never lists the records).
  if (await deps.store.putIf(deps.artifactsBucket, key, body, { ifAbsent: true }, 'application/json')) {
    await new StoredCounters(deps.store, deps.artifactsBucket).add(QUARANTINE_COUNTER, 1);
  } else {
    await deps.store.put(deps.artifactsBucket, key, body, 'application/json');
  }
  // A broken re-upload replaces a good image: its old vector and views must not outlive it.
  await deleteVectors(deps, imageId);
  await deps.store.deleteMany(deps.artifactsBucket, [artifactKeys.derivedMeta(imageId), ...artifactKeys.derivedFiles(imageId)]);
}

async function removeImage(deps: AugmentDeps, imageId: string, { keepLabel = false } = {}): Promise<void> {
  // The meta first: an embed that read it before this point finds it gone afterwards and undoes its write.
  await deps.store.deleteMany(deps.artifactsBucket, [artifactKeys.derivedMeta(imageId)]);
  await deleteVectors(deps, imageId);
  await deps.store.deleteMany(deps.artifactsBucket, [...artifactKeys.derivedFiles(imageId), ...(keepLabel ? [] : [artifactKeys.label(imageId)])]);
  await unquarantine(deps, imageId);
}

async function unquarantine(deps: AugmentDeps, imageId: string): Promise<void> {
  const key = artifactKeys.quarantine(imageId);
  if (!(await deps.store.head(deps.artifactsBucket, key))) return;
  await deps.store.delete(deps.artifactsBucket, key);
  await new StoredCounters(deps.store, deps.artifactsBucket).add(QUARANTINE_COUNTER, -1);
}

async function deleteVectors(deps: AugmentDeps, imageId: string): Promise<void> {
  const pointers = [await deps.models.servingPointer(), await deps.models.candidatePointer()];
  for (const pointer of pointers) {
    if (!pointer) continue;
    const index = await deps.indexes.forReading(pointer);
    await index?.delete([imageId]);
  }
}

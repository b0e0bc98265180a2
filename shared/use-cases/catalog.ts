/**
 * The image catalog behind `GET /images` (no key): every upload, newest first, paged with a stable
 * cursor, filtered by key prefix, state and label.
 *
 * Neither store can list newest first (S3 lists in key order), so augment writes one small entry per
 * upload at `catalog/<rank>-<imageId>.json`, where the rank sorts later uploads first: the
 * complement of the upload's Last-Modified in milliseconds, then a piece of its ETag (two uploads of
 * one key in the same second are two entries). A page is a listing after the cursor, which is the
 * last entry returned: uploads that arrive while a user pages rank before it, so pages never shift,
 * repeat or skip.
 *
 * Entries are never updated in place. An entry is current while the image's object still has the
 * entry's ETag and Last-Modified; a re-upload or a delete leaves it stale, and the listing skips it
 * and removes it (nothing else can find it cheaply). State, labels and pseudo-labels are read at
 * listing time from where they live (the serving index, quarantine records, label records), so
 * they are never out of date. Filters are applied while scanning: a page scans at most
 * SCAN_LIMIT entries and may hold fewer than `limit` items; the cursor says whether there are more.
 */
import { artifactKeys } from '../artifact-keys';
import { BadRequestError } from '../errors';
import { parseJsonObject } from '../json';
import type { ObjectInfo } from '../ports/object-store';
import { CatalogEntrySchema, LabelRecordSchema, QuarantineRecordSchema, type CatalogEntry } from '../schemas';
import type { ArtifactsDeps } from './deps';
import { defined, type ImageStatus, type StatusDeps } from './status';

/** Entries read per step of a scan (S3 Vectors' GetVectors takes at most 100 keys). */
const BATCH = 100;
/** Entries one request scans at most when filters skip many: a page answers in bounded time. */
export const SCAN_LIMIT = 1000;
/** Ranks are this minus the upload time in ms: 13 digits until the year 2286. */
const RANK_BASE = 9_999_999_999_999;

/** The rank of an upload: later uploads sort first. */
export function catalogRank(uploadedAt: Date, etag: string): string {
  const inverted = String(RANK_BASE - uploadedAt.getTime()).padStart(13, '0');
  return `${inverted}.${
    etag
      .replace(/[^0-9a-fA-F]/g, '')
      .slice(0, 8)
      .toLowerCase() || '0'
  }`;
}

/** Augment's record of an upload it saw (idempotent: the same upload always writes the same entry). */
export async function recordUpload(deps: ArtifactsDeps, imageId: string, key: string, head: ObjectInfo, now: Date): Promise<void> {
  const uploadedAt = head.lastModified ?? now;
  const entry: CatalogEntry = { key, imageId, etag: head.etag, uploadedAt: uploadedAt.toISOString(), size: head.size };
  await deps.store.put(deps.artifactsBucket, artifactKeys.catalogEntry(catalogRank(uploadedAt, head.etag), imageId), JSON.stringify(entry), 'application/json');
}

export type ImageState = ImageStatus['state'];

export interface ImageListQuery {
  /** Only keys starting with this. */
  prefix?: string;
  state?: ImageState;
  /** Only images whose human label or pseudo-label is this. */
  label?: string;
  limit: number;
  /** From the previous page's `cursor`. */
  cursor?: string;
}

export interface ImageListItem extends ImageStatus {
  uploadedAt: string;
  size: number;
  /** Whether GET /thumbnails has one for it now (not for quarantined images, nor before augment made it). */
  thumbnail: boolean;
}

export interface ImageList {
  items: ImageListItem[];
  /** Present when there may be more: pass it as `cursor` for the next page. */
  cursor?: string;
}

export async function listImages(deps: StatusDeps, query: ImageListQuery): Promise<ImageList> {
  const startAfter = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
  const pointer = await deps.models.servingPointer();
  const index = pointer ? await deps.indexes.forReading(pointer) : undefined;
  const items: ImageListItem[] = [];
  const listing = deps.store.list(deps.artifactsBucket, artifactKeys.catalogPrefix, startAfter)[Symbol.asyncIterator]();
  let scanned = 0;
  let lastScanned: string | undefined;
  for (;;) {
    const batch: string[] = [];
    while (batch.length < BATCH) {
      const next = await listing.next();
      if (next.done) break;
      batch.push(next.value.key);
    }
    if (batch.length === 0) return { items };
    const resolved = await resolveBatch(deps, index, batch, query);
    for (const [i, item] of resolved.entries()) {
      scanned += 1;
      lastScanned = batch[i];
      if (!item) continue;
      items.push(item);
      if (items.length === query.limit) {
        await listing.return?.();
        const more = i < batch.length - 1 || batch.length === BATCH;
        return more ? { items, cursor: encodeCursor(batch[i]!) } : { items };
      }
    }
    if (batch.length < BATCH) return { items };
    if (scanned >= SCAN_LIMIT) {
      await listing.return?.();
      return { items, cursor: encodeCursor(lastScanned!) };
    }
  }
}

/** The items of a batch of entry keys, in order; undefined where stale or filtered out. */
async function resolveBatch(
  deps: StatusDeps,
  index: Awaited<ReturnType<StatusDeps['indexes']['forReading']>>,
  entryKeys: string[],
  query: ImageListQuery,
): Promise<Array<ImageListItem | undefined>> {
  const entries = await Promise.all(
    entryKeys.map(async (k) => {
      const body = await deps.store.get(deps.artifactsBucket, k);
      return body ? parseJsonObject(body, CatalogEntrySchema) : undefined;
    }),
  );
  const wanted = entries.map((e) => (e && (query.prefix === undefined || e.key.startsWith(query.prefix)) ? e : undefined));
  const current = await Promise.all(
    wanted.map(async (entry, i) => {
      if (!entry) return undefined;
      const head = await deps.store.head(deps.imagesBucket, entry.key);
      if (head && head.etag === entry.etag && (!head.lastModified || head.lastModified.toISOString() === entry.uploadedAt)) return entry;
      // Deleted or uploaded again since (the new upload has an entry of its own): nothing will read this one.
      await deps.store.delete(deps.artifactsBucket, entryKeys[i]!);
      return undefined;
    }),
  );
  const live = current.filter((e): e is CatalogEntry => e !== undefined);
  const records = index && live.length > 0 ? await index.get(live.map((e) => e.imageId)) : [];
  const vectors = new Map(records.map((r) => [r.id, r.metadata]));
  return Promise.all(
    current.map(async (entry) => {
      if (!entry) return undefined;
      const item = await statusOf(deps, entry, vectors.get(entry.imageId));
      if (query.state !== undefined && item.state !== query.state) return undefined;
      if (query.label !== undefined && item.label !== query.label && item.pseudoLabel !== query.label) return undefined;
      return item;
    }),
  );
}

async function statusOf(
  deps: StatusDeps,
  entry: CatalogEntry,
  vector: { modelVersion: string; label?: string; pseudoLabel?: string; confidence?: number } | undefined,
): Promise<ImageListItem> {
  const thumbnail = (await deps.store.head(deps.artifactsBucket, artifactKeys.derivedThumbnail(entry.imageId))) !== undefined;
  const base = { key: entry.key, uploadedAt: entry.uploadedAt, size: entry.size, thumbnail };
  if (vector) {
    const { modelVersion, label, pseudoLabel, confidence } = vector;
    return { ...base, state: 'indexed', modelVersion, ...defined({ label, pseudoLabel, confidence }) };
  }
  const [quarantined, labelBody] = await Promise.all([
    deps.store.get(deps.artifactsBucket, artifactKeys.quarantine(entry.imageId)),
    deps.store.get(deps.artifactsBucket, artifactKeys.label(entry.imageId)),
  ]);
  const label = labelBody ? parseJsonObject(labelBody, LabelRecordSchema).label : undefined;
  if (quarantined) return { ...base, state: 'quarantined', reason: parseJsonObject(quarantined, QuarantineRecordSchema).reason, ...defined({ label }) };
  return { ...base, state: 'pending', ...defined({ label }) };
}

function encodeCursor(entryKey: string): string {
  return Buffer.from(entryKey.slice(artifactKeys.catalogPrefix.length), 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): string {
  const slot = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!/^\d{13}\.[0-9a-f]+-[0-9a-f]{32}\.json$/.test(slot)) throw new BadRequestError('cursor is not one this API returned; start again without it');
  return `${artifactKeys.catalogPrefix}${slot}`;
}

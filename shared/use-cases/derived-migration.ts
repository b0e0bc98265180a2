/**
 * Which derived images are below today's working resolution, and the AWS deployment's migration:
 * each lifecycle tick reads a page of `derived/<imageId>/meta.json` after a stored cursor and sends every image
 * that needs re-deriving to the ingest queue as a synthetic created-event, which augment handles like
 * an upload (re-derives from the original, then embed re-embeds it). When the listing is exhausted the
 * sizes are recorded in `layout/derived.json` and later ticks cost one GET. Without sharp: the
 * lifecycle function ships no native modules. (The embedded stack re-derives in process, with
 * progress: migrate-derived.ts.)
 */
import { z } from 'zod';
import { artifactKeys } from '../artifact-keys';
import { nowOf } from '../clock';
import { DERIVED_LAYOUT_VERSION, type DerivedSizes } from '../derived-sizes';
import { parseJsonObject } from '../json';
import type { ObjectStore } from '../ports/object-store';
import type { Queue } from '../ports/queue';
import { s3EventBody } from '../s3-event';
import { DerivedMetaSchema, type DerivedMeta } from '../schemas';

/** Sequencers of migration events: augment deletes layout 1's file once such an event re-derived the image. */
export const MIGRATION_SEQUENCER_PREFIX = 'migrate-';

export const DerivedLayoutRecordSchema = z.object({
  schemaVersion: z.literal(DERIVED_LAYOUT_VERSION),
  workingSize: z.number().int().positive(),
  viewSize: z.number().int().positive(),
  /** Whether every image has a thumbnail (thumb.webp, added after layout 2); absent: not yet. */
  thumbnails: z.boolean().optional(),
  migratedAt: z.string(),
  images: z.number().int().nonnegative(),
});
export type DerivedLayoutRecord = z.infer<typeof DerivedLayoutRecordSchema>;

/** Whether an image's derived files must be made again from its original for these sizes. */
export function needsRederive(meta: DerivedMeta, sizes: DerivedSizes): boolean {
  if (meta.schemaVersion === 1) return true;
  // Made before thumbnails (and catalog entries, GET /images) existed.
  if (!meta.thumbnail) return true;
  const sourceShorter = Math.min(meta.source.width, meta.source.height);
  const storedShorter = Math.min(meta.canonical.width, meta.canonical.height);
  const canonicalTooSmall = meta.working.size < sizes.workingSize && sourceShorter > storedShorter;
  const viewsTooSmall = meta.views.count > 0 && meta.working.viewSize < sizes.viewSize && storedShorter > meta.views.size;
  return canonicalTooSmall || viewsTooSmall;
}

/** `layout/migration.json`: how far an AWS migration pass has listed. */
const MigrationCursorSchema = z.object({
  workingSize: z.number().int().positive(),
  viewSize: z.number().int().positive(),
  cursor: z.string().nullable(),
  scanned: z.number().int().nonnegative(),
  enqueued: z.number().int().nonnegative(),
  startedAt: z.string(),
});

export async function readLayoutRecord(deps: BucketOf): Promise<DerivedLayoutRecord | undefined> {
  const body = await deps.store.get(deps.artifactsBucket, artifactKeys.derivedLayout);
  if (!body) return undefined;
  const parsed = DerivedLayoutRecordSchema.safeParse(JSON.parse(body.toString('utf8')));
  return parsed.success ? parsed.data : undefined;
}

/** True when a completed pass recorded exactly these sizes: nothing can be below them. */
export async function isMigrated(deps: BucketOf, sizes: DerivedSizes): Promise<boolean> {
  const record = await readLayoutRecord(deps);
  return record !== undefined && record.thumbnails === true && record.workingSize === sizes.workingSize && record.viewSize === sizes.viewSize;
}

/** Every derived image's meta, in key order after `startAfter`, and whether it needs re-deriving (`meta` undefined: removed meanwhile). */
export async function* derivedMetas(
  deps: BucketOf,
  sizes: DerivedSizes,
  startAfter?: string,
): AsyncGenerator<{ metaKey: string; meta?: DerivedMeta; stale: boolean }> {
  for await (const obj of deps.store.list(deps.artifactsBucket, artifactKeys.derivedPrefix, startAfter)) {
    if (!obj.key.endsWith('/meta.json')) continue;
    const body = await deps.store.get(deps.artifactsBucket, obj.key);
    const meta = body ? parseJsonObject(body, DerivedMetaSchema) : undefined;
    yield { metaKey: obj.key, meta, stale: meta !== undefined && needsRederive(meta, sizes) };
  }
}

/** The synthetic event's sequencer for re-deriving an image (augment removes layout 1's file for these). */
export const migrationSequencer = (imageId: string) => `${MIGRATION_SEQUENCER_PREFIX}${imageId}`;

/** A completed pass: every derived image has these sizes (later starts and ticks skip the scan). */
export async function recordLayout(deps: BucketOf & { now?: () => Date }, sizes: DerivedSizes, images: number): Promise<void> {
  const record: DerivedLayoutRecord = {
    schemaVersion: DERIVED_LAYOUT_VERSION,
    workingSize: sizes.workingSize,
    viewSize: sizes.viewSize,
    thumbnails: true,
    migratedAt: nowOf(deps).toISOString(),
    images,
  };
  await deps.store.put(deps.artifactsBucket, artifactKeys.derivedLayout, JSON.stringify(record), 'application/json');
}

export interface MigrationTickDeps {
  store: ObjectStore;
  artifactsBucket: string;
  imagesBucket: string;
  ingestQueue: Queue;
  sizes: DerivedSizes;
  now?: () => Date;
}

type BucketOf = { store: ObjectStore; artifactsBucket: string };

export type MigrationTick = { state: 'done' } | { state: 'migrating'; scanned: number; enqueued: number };

/** One page of the AWS migration pass (at most `pageSize` metas read). */
export async function migrationTick(deps: MigrationTickDeps, pageSize = 200): Promise<MigrationTick> {
  if (await isMigrated(deps, deps.sizes)) return { state: 'done' };
  const body = await deps.store.get(deps.artifactsBucket, artifactKeys.derivedMigration);
  const saved = body ? MigrationCursorSchema.safeParse(JSON.parse(body.toString('utf8'))) : undefined;
  const same = saved?.success && saved.data.workingSize === deps.sizes.workingSize && saved.data.viewSize === deps.sizes.viewSize;
  const state = same ? saved.data : { ...deps.sizes, cursor: null, scanned: 0, enqueued: 0, startedAt: nowOf(deps).toISOString() };
  const events: string[] = [];
  let read = 0;
  let exhausted = true;
  for await (const { metaKey, meta, stale } of derivedMetas(deps, deps.sizes, state.cursor ?? undefined)) {
    if (read >= pageSize) {
      exhausted = false;
      break;
    }
    read += 1;
    state.cursor = metaKey;
    if (stale && meta) {
      events.push(s3EventBody({ eventName: 'ObjectCreated:Put', bucket: deps.imagesBucket, key: meta.key, sequencer: migrationSequencer(meta.imageId) }));
    }
  }
  if (events.length > 0) await deps.ingestQueue.send(events);
  state.scanned += read;
  state.enqueued += events.length;
  if (exhausted) {
    await recordLayout(deps, deps.sizes, state.scanned);
    await deps.store.delete(deps.artifactsBucket, artifactKeys.derivedMigration);
    return { state: 'done' };
  }
  await deps.store.put(deps.artifactsBucket, artifactKeys.derivedMigration, JSON.stringify(state), 'application/json');
  return { state: 'migrating', scanned: state.scanned, enqueued: state.enqueued };
}

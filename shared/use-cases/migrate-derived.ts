/**
 * Re-derives images whose stored derived files are smaller than today's working resolution: layout 1
 * (written at the serving model's input size, e.g. 32x32, before derived images were independent of
 * the model), or layout 2 written with a smaller WORKING_SIZE / VIEW_SIZE than the current one while
 * the original is larger than what was stored. Each is re-derived from its original by `augment`
 * itself (a synthetic created-event), which then re-embeds it; its label, vectors and key stay.
 *
 * Resumable: an image already at the working resolution is skipped, so a pass stopped half-way
 * continues where it left off. When a pass completes, `layout/derived.json` records the sizes, and
 * later starts with the same sizes skip the scan altogether.
 */
import { artifactKeys } from '../artifact-keys';
import { DERIVED_LAYOUT_VERSION, type DerivedSizes } from '../derived-layout';
import { parseJsonObject } from '../json';
import { DerivedMetaSchema, type DerivedMeta } from '../schemas';
import { z } from 'zod';
import { augmentImage, type AugmentDeps, type AugmentOutcome } from './augment-image';
import { nowOf } from '../clock';

export const DerivedLayoutRecordSchema = z.object({
  schemaVersion: z.literal(DERIVED_LAYOUT_VERSION),
  workingSize: z.number().int().positive(),
  viewSize: z.number().int().positive(),
  migratedAt: z.string(),
  images: z.number().int().nonnegative(),
});
export type DerivedLayoutRecord = z.infer<typeof DerivedLayoutRecordSchema>;

/** Whether an image's derived files must be made again from its original for these sizes. */
export function needsRederive(meta: DerivedMeta, sizes: DerivedSizes): boolean {
  if (meta.schemaVersion === 1) return true;
  const sourceShorter = Math.min(meta.source.width, meta.source.height);
  const storedShorter = Math.min(meta.canonical.width, meta.canonical.height);
  const canonicalTooSmall = meta.working.size < sizes.workingSize && sourceShorter > storedShorter;
  const viewsTooSmall = meta.views.count > 0 && meta.working.viewSize < sizes.viewSize && storedShorter > meta.views.size;
  return canonicalTooSmall || viewsTooSmall;
}

export interface MigrationProgress {
  /** Images whose derived files were checked. */
  scanned: number;
  /** Of those, the ones to re-derive. */
  total: number;
  done: number;
  /** Re-derived as quarantined (the original no longer decodes) or gone since. */
  outcomes: Partial<Record<AugmentOutcome, number>>;
  failed: number;
}

export interface MigrationOptions {
  concurrency?: number;
  onProgress?: (p: MigrationProgress) => void;
  /** Stops taking new images (the stack is closing); the pass resumes on the next start. */
  shouldStop?: () => boolean;
}

export async function readLayoutRecord(deps: Pick<AugmentDeps, 'store' | 'artifactsBucket'>): Promise<DerivedLayoutRecord | undefined> {
  const body = await deps.store.get(deps.artifactsBucket, artifactKeys.derivedLayout);
  if (!body) return undefined;
  const parsed = DerivedLayoutRecordSchema.safeParse(JSON.parse(body.toString('utf8')));
  return parsed.success ? parsed.data : undefined;
}

/** True when a completed pass recorded exactly these sizes: nothing can be below them. */
export async function isMigrated(deps: Pick<AugmentDeps, 'store' | 'artifactsBucket'>, sizes: DerivedSizes): Promise<boolean> {
  const record = await readLayoutRecord(deps);
  return record !== undefined && record.workingSize === sizes.workingSize && record.viewSize === sizes.viewSize;
}

/** Metas of every derived image that needs re-deriving, in key order. */
async function* staleMetas(deps: AugmentDeps, sizes: DerivedSizes, progress: MigrationProgress): AsyncGenerator<DerivedMeta> {
  for await (const obj of deps.store.list(deps.artifactsBucket, artifactKeys.derivedPrefix)) {
    if (!obj.key.endsWith('/meta.json')) continue;
    const body = await deps.store.get(deps.artifactsBucket, obj.key);
    if (!body) continue;
    progress.scanned += 1;
    const meta = parseJsonObject(body, DerivedMetaSchema);
    if (needsRederive(meta, sizes)) yield meta;
  }
}

export type MigrationDeps = AugmentDeps & { imagesBucket: string };

export async function migrateDerived(deps: MigrationDeps, options: MigrationOptions = {}): Promise<MigrationProgress> {
  const sizes = deps.settings.derived;
  const progress: MigrationProgress = { scanned: 0, total: 0, done: 0, outcomes: {}, failed: 0 };
  const pending: DerivedMeta[] = [];
  for await (const meta of staleMetas(deps, sizes, progress)) pending.push(meta);
  progress.total = pending.length;
  options.onProgress?.({ ...progress });

  const concurrency = Math.max(1, options.concurrency ?? 2);
  let next = 0;
  let stopped = false;
  const errors: string[] = [];
  const worker = async () => {
    while (next < pending.length) {
      if (options.shouldStop?.()) {
        stopped = true;
        return;
      }
      const meta = pending[next++]!;
      try {
        // No S3 sequencer: unordered, like reconcile's events; augment's HEAD checks decide (a deleted original leaves nothing).
        const outcome = await augmentImage(deps, { kind: 'created', bucket: deps.imagesBucket, key: meta.key, sequencer: `migrate-${meta.imageId}` });
        // Layout 1's file: nothing reads it once the new meta is written (removals delete every layout's files anyway).
        if (outcome === 'augmented' && meta.schemaVersion === 1) await deps.store.delete(deps.artifactsBucket, artifactKeys.derivedViewsV1(meta.imageId));
        progress.outcomes[outcome] = (progress.outcomes[outcome] ?? 0) + 1;
        progress.done += 1;
      } catch (err) {
        progress.failed += 1;
        if (errors.length < 5) errors.push(`${meta.key}: ${(err as Error).message}`);
      }
      options.onProgress?.({ ...progress });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  if (stopped) return progress;
  if (progress.failed > 0) {
    throw new Error(`re-deriving ${progress.failed} of ${progress.total} images failed (they are retried on the next start): ${errors.join('; ')}`);
  }
  const record: DerivedLayoutRecord = {
    schemaVersion: DERIVED_LAYOUT_VERSION,
    workingSize: sizes.workingSize,
    viewSize: sizes.viewSize,
    migratedAt: nowOf(deps).toISOString(),
    images: progress.scanned,
  };
  await deps.store.put(deps.artifactsBucket, artifactKeys.derivedLayout, JSON.stringify(record), 'application/json');
  return progress;
}

/**
 * Re-derives images whose stored derived files are smaller than today's working resolution: layout 1
 * (written at the serving model's input size, e.g. 32x32, before derived images were independent of
 * the model), or layout 2 written with a smaller WORKING_SIZE / VIEW_SIZE than the current one while
 * the original is larger than what was stored. Each is re-derived from its original by `augment`
 * itself (a synthetic created-event), which then re-embeds it; its label, vectors and key stay.
 *
 * Resumable: an image already at the working resolution is skipped, so a pass stopped half-way
 * continues where it left off. When a pass completes, `layout/derived.json` records the sizes, and
 * later starts with the same sizes skip the scan altogether. This is the embedded stack's pass (in
 * process, with progress); AWS deployments migrate through the lifecycle tick (derived-migration.ts).
 */
import { artifactKeys } from '../artifact-keys';
import { DERIVED_LAYOUT_VERSION, type DerivedSizes } from '../derived-sizes';
import { parseJsonObject } from '../json';
import { DerivedMetaSchema, type DerivedMeta } from '../schemas';
import { augmentImage, type AugmentDeps, type AugmentOutcome } from './augment-image';
import { nowOf } from '../clock';
import { type DerivedLayoutRecord, MIGRATION_SEQUENCER_PREFIX, needsRederive } from './derived-migration';

export { isMigrated, needsRederive } from './derived-migration';

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
        const outcome = await augmentImage(deps, {
          kind: 'created',
          bucket: deps.imagesBucket,
          key: meta.key,
          sequencer: `${MIGRATION_SEQUENCER_PREFIX}${meta.imageId}`,
        });
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

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
import type { DerivedMeta } from '../schemas';
import { augmentImage, type AugmentDeps, type AugmentOutcome } from './augment-image';
import { derivedMetas, migrationSequencer, recordLayout } from './derived-migration';

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

export type MigrationDeps = AugmentDeps & { imagesBucket: string };

export async function migrateDerived(deps: MigrationDeps, options: MigrationOptions = {}): Promise<MigrationProgress> {
  const sizes = deps.settings.derived;
  const progress: MigrationProgress = { scanned: 0, total: 0, done: 0, outcomes: {}, failed: 0 };
  const pending: DerivedMeta[] = [];
  for await (const { meta, stale } of derivedMetas(deps, sizes)) {
    if (meta) progress.scanned += 1;
    if (stale && meta) pending.push(meta);
  }
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
          sequencer: migrationSequencer(meta.imageId),
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
  await recordLayout(deps, sizes, progress.scanned);
  return progress;
}

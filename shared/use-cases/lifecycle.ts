/**
 * One tick of the model lifecycle (a timer in the embedded stack, a scheduled function in AWS):
 * the retrain trigger, the serving model's index, index retention, and the rollout of a candidate.
 */
import type { TrainingLauncher } from '../ports/training-launcher';
import { pruneIndexes } from './rollback';
import { advanceRollout, type RolloutDeps, type RolloutTick } from './rollout';
import { acquireTrainingLock, releaseTrainingLock } from './training-lock';
import { retrainTick, type RetrainPolicy } from './training';
import { migrationTick, type MigrationTick, type MigrationTickDeps } from './derived-migration';

/** The lease's job id while the first model is being made, and how long an init task may take. */
export const INIT_JOB_ID = 'init';
const INIT_LEASE_MS = 30 * 60_000;

export interface LifecycleDeps extends RolloutDeps {
  launcher: TrainingLauncher;
  policy: RetrainPolicy;
  indexRetentionMs: number;
  /** AWS: migrate derived images below the working resolution a page per tick (the embedded stack does it in process). */
  migration?: Pick<MigrationTickDeps, 'imagesBucket' | 'ingestQueue' | 'sizes'>;
}

export interface LifecycleTick {
  training: { started?: string; reason?: string };
  initialising?: boolean;
  pruned: string[];
  rollout: RolloutTick;
  /** Vectors in the serving index (a stored counter in AWS: cheap every tick). */
  indexSize?: number;
  migration?: MigrationTick;
}

export async function lifecycleTick(deps: LifecycleDeps): Promise<LifecycleTick> {
  const serving = await deps.models.servingPointer();
  const manifest = serving ? await deps.models.manifest(serving.version) : undefined;
  if (!serving || !manifest) {
    // No model yet (a fresh AWS deployment): have the trainer publish its first version. One init
    // task at a time: it holds the training lease (no training run starts meanwhile either), and a
    // task that died without publishing is retried once the lease expires.
    if (await acquireTrainingLock(deps, INIT_JOB_ID, INIT_LEASE_MS)) {
      try {
        await deps.launcher.launch({ jobId: INIT_JOB_ID, command: 'init' });
      } catch (err) {
        await releaseTrainingLock(deps, INIT_JOB_ID);
        throw err;
      }
    }
    return { training: {}, initialising: true, pruned: [], rollout: { state: 'idle' } };
  }
  await releaseTrainingLock(deps, INIT_JOB_ID);
  // Indexes are created here, where the role may create them, not by the functions that write vectors.
  const servingIndex = await deps.indexes.forWriting(serving, manifest.encoder.embeddingDim);
  const indexSize = await servingIndex.count();
  const training = await retrainTick(deps);
  const pruned = await pruneIndexes(deps, deps.indexRetentionMs);
  const rollout = await advanceRollout(deps);
  const migration = deps.migration ? await migrationTick({ ...deps, ...deps.migration }) : undefined;
  return { training, pruned, rollout, indexSize, ...(migration ? { migration } : {}) };
}

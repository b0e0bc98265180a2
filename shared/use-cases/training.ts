/**
 * Starting training runs: on request (POST /train), on a schedule, and when enough new labels
 * arrived since the last run. Every start takes the training lease first, writes the run record,
 * then launches the trainer; a run whose record is final releases the lease on the next tick.
 */
import { randomUUID } from 'node:crypto';
import { artifactKeys } from '../artifact-keys';
import { ConflictError } from '../errors';
import type { TrainingLauncher } from '../ports/training-launcher';
import { TrainingRunSchema, type TrainingRun } from '../schemas';
import { acquireTrainingLock, isActive, readLease, releaseTrainingLock } from './training-lock';
import { parseJsonObject } from '../json';
import { nowOf } from '../clock';
import type { ArtifactsDeps, Clock } from './deps';

export interface RetrainPolicy {
  /** Minutes between scheduled runs; 0 turns the schedule off. */
  intervalMinutes: number;
  /** Labels added since the last run that start a new one; 0 turns the trigger off. */
  minNewLabels: number;
  /** Training budget of a run that does not say otherwise. */
  maxMinutes: number;
}

export interface TrainingDeps extends ArtifactsDeps, Clock {
  launcher: TrainingLauncher;
  policy: RetrainPolicy;
  newJobId?: () => string;
}

/** Extra time on the lease beyond the training budget: data loading, evaluation, export, publishing. */
const LEASE_MARGIN_MS = 15 * 60_000;
const FINAL = new Set(['published', 'rejected', 'failed']);

const defaultJobId = () =>
  `train-${new Date()
    .toISOString()
    .replace(/[-:.TZ]/g, '')
    .slice(0, 14)}-${randomUUID().slice(0, 8)}`;

export interface TrainingStart {
  maxMinutes?: number;
  reason?: string;
  /** An import job (POST /models/import) instead of a training run: same lease, same run record. */
  importId?: string;
}

export async function startTraining(deps: TrainingDeps, input: TrainingStart): Promise<{ jobId: string }> {
  const jobId = (deps.newJobId ?? defaultJobId)();
  const maxMinutes = input.maxMinutes ?? deps.policy.maxMinutes;
  await settleFinishedRun(deps);
  if (!(await acquireTrainingLock(deps, jobId, maxMinutes * 60_000 + LEASE_MARGIN_MS))) {
    const current = await readLease(deps);
    throw new ConflictError(
      'training_in_progress',
      `training run ${current?.lease.jobId ?? ''} is in progress; try again when it has finished`.replace('  ', ' '),
    );
  }
  const now = nowOf(deps).toISOString();
  const record: TrainingRun = { jobId, state: 'running', startedAt: now, updatedAt: now, phase: `starting (${input.reason ?? 'request'})`, maxMinutes };
  await deps.store.put(deps.artifactsBucket, artifactKeys.run(jobId), JSON.stringify(record), 'application/json');
  try {
    await deps.launcher.launch({ jobId, maxMinutes, ...(input.importId ? { command: 'import' as const, importId: input.importId } : {}) });
  } catch (err) {
    await finishRun(deps, jobId, `could not start the trainer: ${(err as Error).message}`);
    throw err;
  }
  return { jobId };
}

/** Marks a run failed unless the trainer already wrote its outcome, and releases its lease. */
export async function finishRun(deps: Pick<TrainingDeps, 'store' | 'artifactsBucket' | 'now'>, jobId: string, error: string): Promise<void> {
  const run = await readRun(deps, jobId);
  if (run && !FINAL.has(run.state)) {
    const now = nowOf(deps).toISOString();
    await deps.store.put(
      deps.artifactsBucket,
      artifactKeys.run(jobId),
      JSON.stringify({ ...run, state: 'failed', error, updatedAt: now, finishedAt: now }),
      'application/json',
    );
  }
  await releaseTrainingLock(deps, jobId);
}

async function readRun(deps: Pick<TrainingDeps, 'store' | 'artifactsBucket'>, jobId: string): Promise<TrainingRun | undefined> {
  const body = await deps.store.get(deps.artifactsBucket, artifactKeys.run(jobId));
  return body ? parseJsonObject(body, TrainingRunSchema) : undefined;
}

/**
 * The embedded stack's start: a run that still holds the lease cannot be alive (the trainer dies
 * with the stack that started it, and the data directory has one stack at a time), so it is
 * marked failed and its lease released. Returns the abandoned job id, if any.
 */
export async function abandonInterruptedRun(deps: Pick<TrainingDeps, 'store' | 'artifactsBucket' | 'now'>, reason: string): Promise<string | undefined> {
  const current = await readLease(deps);
  if (!current || current.lease.released) return undefined;
  await finishRun(deps, current.lease.jobId, reason);
  return current.lease.jobId;
}

/** Releases the lease of a run whose record is final (the trainer ran to its end). True while a run is still active. */
async function settleFinishedRun(deps: TrainingDeps): Promise<boolean> {
  const current = await readLease(deps);
  if (!current || !isActive(current.lease, nowOf(deps))) return false;
  const run = await readRun(deps, current.lease.jobId);
  if (run && FINAL.has(run.state)) {
    await releaseTrainingLock(deps, current.lease.jobId);
    return false;
  }
  return true;
}

export interface RetrainState {
  now: Date;
  runActive: boolean;
  lastRunStartedAt?: Date;
  labelsSinceLastRun: number;
}

/** The trigger rule as a pure function: which reason, if any, starts a run now. */
export function retrainReason(state: RetrainState, policy: RetrainPolicy): 'schedule' | 'labels' | undefined {
  if (state.runActive) return undefined;
  if (policy.minNewLabels > 0 && state.labelsSinceLastRun >= policy.minNewLabels) return 'labels';
  if (policy.intervalMinutes > 0) {
    const last = state.lastRunStartedAt?.getTime();
    if (last === undefined || state.now.getTime() - last >= policy.intervalMinutes * 60_000) return 'schedule';
  }
  return undefined;
}

/**
 * When the last run started and how many labels were written since, counted up to `upTo` (the
 * trigger's threshold: the tick runs every few seconds and the label set can be large); 0 counts none.
 */
export async function labelProgress(deps: ArtifactsDeps, upTo: number): Promise<{ lastRunStartedAt?: Date; labelsSinceLastRun: number }> {
  let lastRunStartedAt: Date | undefined;
  for await (const obj of deps.store.list(deps.artifactsBucket, artifactKeys.runsPrefix)) {
    const run = await readRun(deps, obj.key.slice(artifactKeys.runsPrefix.length, -'.json'.length));
    if (run && (!lastRunStartedAt || Date.parse(run.startedAt) > lastRunStartedAt.getTime())) lastRunStartedAt = new Date(run.startedAt);
  }
  let labelsSinceLastRun = 0;
  if (upTo > 0) {
    for await (const obj of deps.store.list(deps.artifactsBucket, artifactKeys.labelsPrefix)) {
      if (!lastRunStartedAt || (obj.lastModified?.getTime() ?? 0) > lastRunStartedAt.getTime()) labelsSinceLastRun += 1;
      if (labelsSinceLastRun >= upTo) break;
    }
  }
  return { ...(lastRunStartedAt ? { lastRunStartedAt } : {}), labelsSinceLastRun };
}

/** One tick of the retrain trigger (a timer locally, EventBridge Scheduler in AWS). */
export async function retrainTick(deps: TrainingDeps): Promise<{ started?: string; reason?: string }> {
  const now = nowOf(deps);
  const runActive = await settleFinishedRun(deps);
  const { lastRunStartedAt, labelsSinceLastRun } = await labelProgress(deps, deps.policy.minNewLabels);
  const reason = retrainReason({ now, runActive, lastRunStartedAt, labelsSinceLastRun }, deps.policy);
  if (!reason) return {};
  try {
    const { jobId } = await startTraining(deps, { reason: reason === 'labels' ? `${labelsSinceLastRun}+ new labels` : 'schedule' });
    return { started: jobId, reason };
  } catch (err) {
    if (err instanceof ConflictError) return {};
    throw err;
  }
}

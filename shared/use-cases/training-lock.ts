/**
 * "Never two training runs at once": a lease in `locks/training.json`, taken with conditional
 * writes (create-if-absent, or replace-if-unchanged once expired or released), so it holds across
 * processes and deployments, and a crashed holder's lease simply expires.
 */
import { artifactKeys } from '../artifact-keys';
import { TrainingLeaseSchema, type TrainingLease } from '../schemas';
import { parseJsonObject } from '../json';
import { nowOf } from '../clock';
import type { ArtifactsDeps, Clock } from './deps';

export const TRAINING_LOCK_KEY = artifactKeys.trainingLock;

export type { TrainingLease };

export interface LockDeps extends ArtifactsDeps, Clock {}

export async function readLease(deps: LockDeps): Promise<{ lease: TrainingLease; etag: string } | undefined> {
  const head = await deps.store.head(deps.artifactsBucket, TRAINING_LOCK_KEY);
  if (!head) return undefined;
  const body = await deps.store.get(deps.artifactsBucket, TRAINING_LOCK_KEY);
  return body ? { lease: parseJsonObject(body, TrainingLeaseSchema), etag: head.etag } : undefined;
}

export function isActive(lease: TrainingLease, now: Date): boolean {
  return !lease.released && Date.parse(lease.expiresAt) > now.getTime();
}

/** Takes the lease for `jobId`; false when another run holds an active one (or won a race for it). */
export async function acquireTrainingLock(deps: LockDeps, jobId: string, leaseMs: number): Promise<boolean> {
  const now = nowOf(deps);
  const lease: TrainingLease = { jobId, acquiredAt: now.toISOString(), expiresAt: new Date(now.getTime() + leaseMs).toISOString() };
  const body = JSON.stringify(lease);
  const current = await readLease(deps);
  if (!current) return deps.store.putIf(deps.artifactsBucket, TRAINING_LOCK_KEY, body, { ifAbsent: true }, 'application/json');
  if (isActive(current.lease, now)) return false;
  return deps.store.putIf(deps.artifactsBucket, TRAINING_LOCK_KEY, body, { ifMatch: current.etag }, 'application/json');
}

/** Releases the lease if `jobId` still holds it. */
export async function releaseTrainingLock(deps: LockDeps, jobId: string): Promise<void> {
  const current = await readLease(deps);
  if (!current || current.lease.jobId !== jobId || current.lease.released) return;
  const released: TrainingLease = { ...current.lease, released: true, expiresAt: nowOf(deps).toISOString() };
  await deps.store.putIf(deps.artifactsBucket, TRAINING_LOCK_KEY, JSON.stringify(released), { ifMatch: current.etag }, 'application/json');
}

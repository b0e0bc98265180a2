/** Rolling back to the previous serving version, and deleting old indexes after their retention. */
import { ConflictError, ServiceUnavailableError } from '../errors';
import { indexNameForVersion } from '../ids';
import { artifactKeys } from '../artifact-keys';
import { readRollout } from './rollout';
import { nowOf } from '../clock';
import type { ArtifactsDeps, Clock, ModelsDeps } from './deps';

export interface RollbackDeps extends ArtifactsDeps, ModelsDeps, Clock {}

export async function rollback(deps: RollbackDeps): Promise<{ serving: string; previous: string }> {
  const serving = await deps.models.servingPointer();
  if (!serving) throw new ServiceUnavailableError('no_model', 'no encoder has been published yet');
  const record = await readRollout(deps, serving.version);
  const target = record?.previous ?? (await deps.models.manifest(serving.version))?.parent ?? null;
  if (!target) throw new ConflictError('no_previous_version', `${serving.version} has no previous version to roll back to`);
  const index = indexNameForVersion(target);
  if (!(await deps.indexes.store.openIndex(index))) {
    throw new ConflictError('previous_index_deleted', `the index of ${target} was deleted after its retention period; it cannot serve again`);
  }
  const now = nowOf(deps).toISOString();
  // A rollout in progress builds on the version being abandoned: stop it.
  await deps.models.clearCandidate();
  await deps.models.setServing({ version: target, index, updatedAt: now });
  if (record) {
    await deps.store.put(
      deps.artifactsBucket,
      artifactKeys.rollout(serving.version),
      JSON.stringify({ ...record, state: 'rolled-back', updatedAt: now }),
      'application/json',
    );
  }
  const previousRecord = await readRollout(deps, target);
  if (previousRecord) {
    await deps.store.put(
      deps.artifactsBucket,
      artifactKeys.rollout(target),
      JSON.stringify({ ...previousRecord, state: 'serving', updatedAt: now }),
      'application/json',
    );
  }
  return { serving: target, previous: serving.version };
}

/**
 * Deletes indexes that no pointer needs: not serving, not the candidate, not the rollback target
 * of the serving version, and retired (superseded or rolled back) for longer than `retentionMs`.
 */
export async function pruneIndexes(deps: RollbackDeps, retentionMs: number): Promise<string[]> {
  const now = nowOf(deps).getTime();
  const serving = await deps.models.servingPointer();
  const candidate = await deps.models.candidatePointer();
  const servingRecord = serving ? await readRollout(deps, serving.version) : undefined;
  const keep = new Set([serving?.index, candidate?.index, servingRecord?.previous ? indexNameForVersion(servingRecord.previous) : undefined]);
  const deleted: string[] = [];
  for (const name of await deps.indexes.store.listIndexes()) {
    if (keep.has(name)) continue;
    const version = name.replace(/^emb-/, '');
    const record = await readRollout(deps, version);
    if (!record || (record.state !== 'superseded' && record.state !== 'rolled-back')) continue;
    if (now - Date.parse(record.updatedAt) < retentionMs) continue;
    await deps.indexes.store.deleteIndex(name);
    deleted.push(name);
  }
  return deleted;
}

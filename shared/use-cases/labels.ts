/** Human labels: stored in the artifacts bucket (last write wins per key) and attached to vectors. */
import { artifactKeys } from '../artifact-keys';
import { BadRequestError, NotFoundError } from '../errors';
import { imageIdForKey } from '../ids';
import type { LabelRecord } from '../schemas';
import { nowOf } from '../clock';
import type { BucketsDeps, Clock, ModelsDeps } from './deps';

export const MAX_LABELS_PER_REQUEST = 1000;

export interface LabelDeps extends BucketsDeps, ModelsDeps, Clock {}

export async function putLabels(deps: LabelDeps, labels: Array<{ key: string; label: string }>): Promise<{ updated: number }> {
  if (labels.length === 0) throw new BadRequestError('no labels given');
  if (labels.length > MAX_LABELS_PER_REQUEST) throw new BadRequestError(`at most ${MAX_LABELS_PER_REQUEST} labels per request`);
  // Last one wins within a request too.
  const byKey = new Map(labels.map((l) => [l.key, l.label]));
  const heads = await Promise.all([...byKey.keys()].map(async (key) => [key, await deps.store.head(deps.imagesBucket, key)] as const));
  const unknown = heads.filter(([, h]) => !h).map(([k]) => k);
  if (unknown.length > 0) {
    throw new NotFoundError(
      `unknown image key${unknown.length > 1 ? 's' : ''}: ${unknown
        .slice(0, 5)
        .map((k) => JSON.stringify(k))
        .join(', ')}${unknown.length > 5 ? ', ...' : ''}`,
    );
  }
  const at = nowOf(deps).toISOString();
  await Promise.all(
    [...byKey].map(([key, label]) => {
      const record: LabelRecord = { key, label, at };
      return deps.store.put(deps.artifactsBucket, artifactKeys.label(imageIdForKey(key)), JSON.stringify(record), 'application/json');
    }),
  );
  await attachToVectors(deps, byKey);
  return { updated: byKey.size };
}

/** Rewrites the metadata of already-indexed vectors; images not indexed yet get the label when embedded. */
async function attachToVectors(deps: LabelDeps, byKey: Map<string, string>): Promise<void> {
  const ids = new Map([...byKey].map(([key, label]) => [imageIdForKey(key), label]));
  for (const pointer of [await deps.models.servingPointer(), await deps.models.candidatePointer()]) {
    if (!pointer) continue;
    const index = await deps.indexes.forReading(pointer);
    if (!index) continue;
    const records = await index.get([...ids.keys()]);
    if (records.length === 0) continue;
    await index.put(records.map((r) => ({ ...r, metadata: { ...r.metadata, label: ids.get(r.id)! } })));
  }
}

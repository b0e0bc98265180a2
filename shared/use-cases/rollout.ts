/**
 * Blue/green rollout of a candidate encoder, advanced one tick at a time (a timer locally, a
 * scheduled function in AWS). Every tick is idempotent and resumes from `rollouts/<version>.json`:
 *
 *   1. backfill: page through the images bucket after the recorded cursor and send each image
 *      to the embed queue for the candidate version only (uploads in the meantime are embedded
 *      with both encoders by the embed path itself);
 *   2. once every page is sent: compare the candidate's index with the serving one; images still
 *      missing are sent again when the embed queue has drained;
 *   3. complete: `models/serving.json` is replaced by the candidate's pointer in one PUT (queries
 *      switch atomically), `models/candidate.json` is removed; the previous index stays for rollback.
 */
import { artifactKeys } from '../artifact-keys';
import { CANDIDATE_POINTER_KEY, SERVING_POINTER_KEY } from '../model-registry';
import type { Queue } from '../ports/queue';
import type { VectorIndex } from '../ports/vector-index';
import { imageIdForKey } from '../ids';
import { ModelPointerSchema, RolloutRecordSchema, type EmbedMessage, type ModelPointer, type RolloutRecord } from '../schemas';
import { parseJsonObject } from '../json';
import { nowOf } from '../clock';
import type { BucketsDeps, Clock, ModelsDeps } from './deps';

export interface RolloutDeps extends BucketsDeps, ModelsDeps, Clock {
  embedQueue: Queue;
  /** Images listed and sent for re-embedding at a time (one listing page, one send). */
  pageSize?: number;
  /**
   * Messages the backfill keeps in the embed queue: a tick sends pages while the queue holds fewer
   * (waiting plus in flight), so the backfill runs as fast as the embedders drain the queue, and an
   * upload's message waits behind at most this many. Default: one page (one page a tick when the
   * queue is empty, none while it is not).
   */
  backlog?: number;
}

/** Pages one tick sends at most, so that a tick stays short whatever the backlog. */
export const MAX_PAGES_PER_TICK = 100;

export type RolloutTick =
  | { state: 'idle' }
  | { state: 'backfilling'; version: string; enqueued: number; done: number; total: number }
  | { state: 'flipped'; version: string; previous: string | null }
  | { state: 'discarded'; version: string; reason: string };

export async function readRollout(deps: Pick<RolloutDeps, 'store' | 'artifactsBucket'>, version: string): Promise<RolloutRecord | undefined> {
  const body = await deps.store.get(deps.artifactsBucket, artifactKeys.rollout(version));
  return body ? parseJsonObject(body, RolloutRecordSchema) : undefined;
}

async function saveRollout(deps: RolloutDeps, record: RolloutRecord): Promise<void> {
  record.updatedAt = nowOf(deps).toISOString();
  await deps.store.put(deps.artifactsBucket, artifactKeys.rollout(record.version), JSON.stringify(record), 'application/json');
}

export async function advanceRollout(deps: RolloutDeps): Promise<RolloutTick> {
  const candidatePointer = await readPointer(deps, CANDIDATE_POINTER_KEY);
  if (!candidatePointer) return { state: 'idle' };
  const servingPointer = await readPointer(deps, SERVING_POINTER_KEY);
  const version = candidatePointer.version;
  if (servingPointer?.version === version) {
    // A crash between the flip and removing the candidate pointer: finish the rollout's bookkeeping.
    const finished = await readRollout(deps, version);
    if (finished && finished.state === 'backfilling') {
      await saveRollout(deps, { ...finished, state: 'serving', completedAt: finished.completedAt ?? nowOf(deps).toISOString() });
    }
    await deps.models.clearCandidate();
    return { state: 'discarded', version, reason: 'already serving' };
  }
  const manifest = await deps.models.manifest(version);
  if (!manifest?.gate.passed) {
    await deps.models.clearCandidate();
    return { state: 'discarded', version, reason: manifest ? 'its gate did not pass' : 'no manifest' };
  }
  const now = nowOf(deps).toISOString();
  const saved = await readRollout(deps, version);
  const record: RolloutRecord = saved ?? {
    version,
    index: candidatePointer.index,
    previous: servingPointer?.version ?? null,
    state: 'backfilling',
    cursor: null,
    enqueueComplete: false,
    enqueued: 0,
    startedAt: now,
    updatedAt: now,
  };
  const candidateIndex = await deps.indexes.forWriting(candidatePointer, manifest.encoder.embeddingDim);

  // 1. backfill: pages until the embed queue holds `backlog` messages. The depth is read once a tick
  // and what this tick sent is counted on top (SQS's counts are approximate and lag behind sends).
  const pageSize = deps.pageSize ?? 500;
  let room = 0;
  if (!record.enqueueComplete) {
    const depth = await deps.embedQueue.depth();
    room = (deps.backlog ?? pageSize) - (depth.visible + depth.inFlight);
  }
  for (let pages = 0; !record.enqueueComplete && room > 0 && pages < MAX_PAGES_PER_TICK; pages += 1) {
    const page: EmbedMessage[] = [];
    for await (const obj of deps.store.list(deps.imagesBucket, undefined, record.cursor ?? undefined)) {
      page.push({ key: obj.key, imageId: imageIdForKey(obj.key), sequencer: `rollout-${version}`, versions: [version] });
      if (page.length >= pageSize) break;
    }
    if (page.length > 0) await deps.embedQueue.send(page);
    record.cursor = page.at(-1)?.key ?? record.cursor;
    record.enqueued += page.length;
    record.enqueueComplete = page.length < pageSize;
    room -= page.length;
    // After every page: a tick cut short (a timeout, a crash) resumes after the last page sent.
    await saveRollout(deps, record);
  }
  // A rollout that starts while the queue is full is recorded all the same (its start, its progress).
  if (!saved && record.cursor === null && !record.enqueueComplete) await saveRollout(deps, record);

  // 2. completeness: the candidate's index holds as many images as the serving one. Sizes are
  // counts (O(1) per tick with stored counters); the ids are compared only when the embed queue has
  // drained and images are still missing, to re-send those.
  const servingIndex = servingPointer ? await deps.indexes.forReading(servingPointer) : undefined;
  const total = servingIndex ? await servingIndex.count() : 0;
  const done = Math.min(total, await candidateIndex.count());
  if (!record.enqueueComplete || done < total) {
    let missing: string[] | undefined;
    if (record.enqueueComplete && servingIndex) {
      const depth = await deps.embedQueue.depth();
      if (depth.visible + depth.inFlight === 0) {
        missing = await missingIds(servingIndex, candidateIndex, pageSize);
        const records = await servingIndex.get(missing);
        await deps.embedQueue.send(records.map((r) => ({ key: r.metadata.key, imageId: r.id, sequencer: `rollout-${version}`, versions: [version] })));
      }
    }
    // Counts can drift (a counter write lost after a crash); the ids are the truth: none missing, flip.
    if (missing?.length !== 0) return { state: 'backfilling', version, enqueued: record.enqueued, done, total };
  }

  // 3. the flip
  await deps.models.setServing({ ...candidatePointer, updatedAt: now });
  await deps.models.clearCandidate();
  record.state = 'serving';
  record.completedAt = now;
  await saveRollout(deps, record);
  if (record.previous) {
    const previous = await readRollout(deps, record.previous);
    if (previous && previous.state === 'serving') await saveRollout(deps, { ...previous, state: 'superseded' });
  }
  return { state: 'flipped', version, previous: record.previous };
}

async function readPointer(deps: RolloutDeps, key: string): Promise<ModelPointer | undefined> {
  // Never from the registry's cache: the rollout must see the latest pointers.
  const body = await deps.store.get(deps.artifactsBucket, key);
  return body ? parseJsonObject(body, ModelPointerSchema) : undefined;
}

/** Up to `limit` ids of `serving` that `candidate` lacks (a full comparison: only when the queue has drained short). */
async function missingIds(serving: VectorIndex, candidate: VectorIndex, limit: number): Promise<string[]> {
  const have = new Set<string>();
  for await (const id of candidate.listIds()) have.add(id);
  const missing: string[] = [];
  for await (const id of serving.listIds()) {
    if (!have.has(id)) missing.push(id);
    if (missing.length >= limit) break;
  }
  return missing;
}

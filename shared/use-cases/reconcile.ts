/**
 * Recovers events lost in a crash: every image without a vector for the serving model (or
 * re-uploaded after its derived files or quarantine record were written) is sent to the ingest
 * queue again as a synthetic ObjectCreated event, and vectors of images that no longer exist are
 * deleted. Safe to run at any time: the pipeline is idempotent.
 */
import { artifactKeys } from '../artifact-keys';
import { imageIdForKey } from '../ids';
import type { Queue } from '../ports/queue';
import { s3EventBody } from '../s3-event';
import type { BucketsDeps, ModelsDeps } from './deps';

export interface ReconcileDeps extends BucketsDeps, ModelsDeps {
  ingestQueue: Queue;
}

export interface ReconcileResult {
  images: number;
  enqueued: number;
  orphansRemoved: number;
}

const SEND_CHUNK = 500;

export async function reconcile(deps: ReconcileDeps): Promise<ReconcileResult> {
  const pointer = await deps.models.servingPointer();
  const index = pointer ? await deps.indexes.forReading(pointer) : undefined;
  const indexed = new Set<string>();
  if (index) for await (const id of index.listIds()) indexed.add(id);

  const processedAt = new Map<string, number>();
  for await (const obj of deps.store.list(deps.artifactsBucket, 'derived/')) {
    const m = /^derived\/([0-9a-f]{32})\/meta\.json$/.exec(obj.key);
    if (m) processedAt.set(m[1]!, obj.lastModified?.getTime() ?? 0);
  }
  const quarantined = new Set<string>();
  for await (const obj of deps.store.list(deps.artifactsBucket, artifactKeys.quarantinePrefix)) {
    const m = /^quarantine\/([0-9a-f]{32})\.json$/.exec(obj.key);
    if (!m) continue;
    quarantined.add(m[1]!);
    processedAt.set(m[1]!, Math.max(processedAt.get(m[1]!) ?? 0, obj.lastModified?.getTime() ?? 0));
  }

  const existing = new Set<string>();
  let images = 0;
  let enqueued = 0;
  let batch: string[] = [];
  const flush = async () => {
    if (batch.length === 0) return;
    await deps.ingestQueue.send(batch);
    enqueued += batch.length;
    batch = [];
  };
  for await (const obj of deps.store.list(deps.imagesBucket)) {
    images += 1;
    const id = imageIdForKey(obj.key);
    existing.add(id);
    const modified = obj.lastModified?.getTime() ?? 0;
    const done = (indexed.has(id) || quarantined.has(id)) && (processedAt.get(id) ?? 0) >= modified;
    if (done) continue;
    batch.push(
      s3EventBody({
        eventName: 'ObjectCreated:Put',
        bucket: deps.imagesBucket,
        key: obj.key,
        size: obj.size,
        etag: obj.etag,
        sequencer: `reconcile-${modified.toString(16)}`,
      }),
    );
    if (batch.length >= SEND_CHUNK) await flush();
  }
  await flush();

  const orphans = [...indexed].filter((id) => !existing.has(id));
  if (index && orphans.length > 0) await index.delete(orphans);
  return { images, enqueued, orphansRemoved: orphans.length };
}

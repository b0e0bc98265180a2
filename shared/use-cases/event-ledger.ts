/**
 * The per-image event ledger (`events/<imageId>.json`): the newest S3 event seen for a key, by its
 * sequencer. S3 delivers events at least once and in no particular order; for one key, the event
 * with the greater sequencer happened later. Recording the newest one with conditional writes
 * lets every worker tell a stale event from a current one, and a removal leaves a tombstone that
 * no older create can get past.
 */
import { artifactKeys } from '../artifact-keys';
import type { ObjectStore } from '../ports/object-store';
import { EventLedgerRecordSchema, type EventLedgerRecord } from '../schemas';
import { parseJsonObject } from '../json';

/**
 * Orders two sequencers of the same key: negative when `a` happened first. As S3 documents, the
 * shorter value is left-padded with zeros before a lexicographic comparison of the hex digits.
 */
export function compareSequencers(a: string, b: string): number {
  const width = Math.max(a.length, b.length);
  const pa = a.toUpperCase().padStart(width, '0');
  const pb = b.toUpperCase().padStart(width, '0');
  return pa < pb ? -1 : pa > pb ? 1 : 0;
}

/** S3 sequencers are hex; events the pipeline makes itself (reconcile) carry none and are not ordered. */
export function isOrdered(sequencer: string): boolean {
  return /^[0-9A-Fa-f]+$/.test(sequencer);
}

export type LedgerVerdict = 'current' | 'duplicate' | 'stale';

interface LedgerDeps {
  store: ObjectStore;
  artifactsBucket: string;
}

export async function readLedger(deps: LedgerDeps, imageId: string): Promise<EventLedgerRecord | undefined> {
  const body = await deps.store.get(deps.artifactsBucket, artifactKeys.events(imageId));
  return body ? parseJsonObject(body, EventLedgerRecordSchema) : undefined;
}

/**
 * Records `event` as the newest for its image unless a newer one is recorded already ('stale'); the
 * same sequencer again is a 'duplicate' (redelivery), safe to process again. Compare-and-set with
 * conditional writes, retried when another worker wrote in between.
 */
export async function recordEvent(deps: LedgerDeps, imageId: string, event: EventLedgerRecord): Promise<LedgerVerdict> {
  if (!isOrdered(event.sequencer)) return 'current'; // no ordering information: rely on HEAD checks alone
  const key = artifactKeys.events(imageId);
  for (let attempt = 0; attempt < 20; attempt += 1) {
    const head = await deps.store.head(deps.artifactsBucket, key);
    const body = JSON.stringify(event);
    if (!head) {
      if (await deps.store.putIf(deps.artifactsBucket, key, body, { ifAbsent: true }, 'application/json')) return 'current';
      continue;
    }
    const current = await readLedger(deps, imageId);
    if (!current) continue;
    const order = compareSequencers(event.sequencer, current.sequencer);
    if (order < 0) return 'stale';
    if (order === 0) return 'duplicate';
    if (await deps.store.putIf(deps.artifactsBucket, key, body, { ifMatch: head.etag }, 'application/json')) return 'current';
  }
  throw new Error(`event ledger for ${imageId} kept changing under concurrent writers; retrying the message`);
}

/** The event recorded for the image after `sequencer`, if there is one (the one being handled is then stale). */
export async function newerEvent(deps: LedgerDeps, imageId: string, sequencer: string): Promise<EventLedgerRecord | undefined> {
  if (!isOrdered(sequencer)) return undefined;
  const latest = await readLedger(deps, imageId);
  return latest && compareSequencers(latest.sequencer, sequencer) > 0 ? latest : undefined;
}

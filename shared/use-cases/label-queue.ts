/**
 * `GET /label-queue`: the unlabelled images the serving model is least sure about, first, and how
 * many labels remain until the retrain trigger starts a run.
 *
 * Certainty of an image: its pseudo-label's confidence when the last run accepted one; otherwise
 * how much its nearest neighbours agree, (top class votes - runner-up votes) / k, where each
 * neighbour votes with its human label or pseudo-label. An image between two classes scores near
 * 0, one whose neighbours are all one class scores 1, one with no labelled neighbours scores 0
 * (nothing is known about it). Candidates are the newest indexed images without a label (at most
 * POOL_MAX of them), so the queue costs a bounded number of index queries however large the corpus.
 */
import { ServiceUnavailableError } from '../errors';
import { imageIdForKey } from '../ids';
import type { VectorIndex, VectorRecord } from '../ports/vector-index';
import type { PipelineSettings } from '../config';
import { listImages, type ImageListItem } from './catalog';
import { defined, type StatusDeps } from './status';
import { labelProgress } from './training';

const NEIGHBORS = 10;
const POOL_MAX = 300;
const QUERY_CONCURRENCY = 8;

export interface LabelQueueDeps extends StatusDeps {
  settings: Pick<PipelineSettings, 'retrain'>;
}

export interface LabelQueueItem {
  key: string;
  /** 0 (unknown, or between classes) to 1 (sure). */
  certainty: number;
  pseudoLabel?: string;
  confidence?: number;
  /** The labels of its nearest neighbours, most votes first. */
  neighborLabels: Array<{ label: string; votes: number }>;
  /** The most likely label, when anything votes for one. */
  suggestion?: string;
}

export interface LabelQueue {
  modelVersion: string;
  items: LabelQueueItem[];
  /** Every label seen among the candidates' neighbours and pseudo-labels, alphabetically. */
  classes: string[];
  /** The label trigger: null fields when it is off (RETRAIN_MIN_NEW_LABELS=0). */
  retrain: { minNewLabels: number; labelsSinceLastRun: number; remaining: number | null };
}

export async function labelQueue(deps: LabelQueueDeps, limit: number): Promise<LabelQueue> {
  const pointer = await deps.models.servingPointer();
  const index = pointer ? await deps.indexes.forReading(pointer) : undefined;
  if (!pointer || !index) throw new ServiceUnavailableError('no_model', 'no encoder has been published yet');
  const poolSize = Math.min(POOL_MAX, Math.max(limit * 5, 100));
  const { items: indexed } = await listImages(deps, { state: 'indexed', limit: 1000 });
  const pool = indexed.filter((i) => i.label === undefined).slice(0, poolSize);
  const vectors = new Map<string, VectorRecord>();
  for (let i = 0; i < pool.length; i += 100) {
    for (const r of await index.get(pool.slice(i, i + 100).map((p) => imageIdForKey(p.key)))) vectors.set(r.id, r);
  }
  const scored = await mapLimit(pool, QUERY_CONCURRENCY, (item) => score(index, item, vectors.get(imageIdForKey(item.key))));
  const classes = new Set<string>();
  for (const s of scored) for (const v of s.neighborLabels) classes.add(v.label);
  for (const s of scored) if (s.pseudoLabel) classes.add(s.pseudoLabel);
  // Least sure first; the newest first among equals (the pool is newest first and the sort is stable).
  scored.sort((a, b) => a.certainty - b.certainty);
  const threshold = deps.settings.retrain.minNewLabels;
  const { labelsSinceLastRun } = await labelProgress(deps, threshold);
  return {
    modelVersion: pointer.version,
    items: scored.slice(0, limit),
    classes: [...classes].sort(),
    retrain: { minNewLabels: threshold, labelsSinceLastRun, remaining: threshold > 0 ? Math.max(0, threshold - labelsSinceLastRun) : null },
  };
}

async function score(index: VectorIndex, item: ImageListItem, record: VectorRecord | undefined): Promise<LabelQueueItem> {
  const neighbors = record ? await index.query({ vector: record.vector, topK: NEIGHBORS, excludeIds: [record.id] }) : [];
  const votes = new Map<string, number>();
  for (const n of neighbors) {
    const label = n.metadata.label ?? n.metadata.pseudoLabel;
    if (label !== undefined) votes.set(label, (votes.get(label) ?? 0) + 1);
  }
  const neighborLabels = [...votes].map(([label, v]) => ({ label, votes: v })).sort((a, b) => b.votes - a.votes || a.label.localeCompare(b.label));
  const margin = ((neighborLabels[0]?.votes ?? 0) - (neighborLabels[1]?.votes ?? 0)) / NEIGHBORS;
  const certainty = item.pseudoLabel !== undefined && item.confidence !== undefined ? item.confidence : margin;
  const suggestion = item.pseudoLabel ?? neighborLabels[0]?.label;
  return {
    key: item.key,
    certainty: Math.round(certainty * 1e4) / 1e4,
    ...defined({ pseudoLabel: item.pseudoLabel, confidence: item.confidence }),
    neighborLabels,
    ...defined({ suggestion }),
  };
}

async function mapLimit<T, R>(items: T[], concurrency: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return out;
}

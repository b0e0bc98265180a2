/** What the pipeline knows: per image, overall health, and the model versions. */
import { artifactKeys } from '../artifact-keys';
import { QUARANTINE_COUNTER, StoredCounters } from '../counters';
import { NotFoundError } from '../errors';
import { imageIdForKey, indexNameForVersion } from '../ids';
import type { Queue } from '../ports/queue';
import {
  LabelRecordSchema,
  ModelReportSchema,
  type ModelReport,
  QuarantineRecordSchema,
  RolloutRecordSchema,
  TrainingRunSchema,
  type ModelManifest,
  type ModelPointer,
  type RolloutRecord,
  type TrainingRun,
} from '../schemas';
import { parseJsonObject } from '../json';
import type { BucketsDeps, ModelsDeps } from './deps';

export interface StatusDeps extends BucketsDeps, ModelsDeps {
  /** Queues whose messages are images not yet indexed (ingest, embed). */
  pendingQueues: Queue[];
}

export interface ImageStatus {
  key: string;
  state: 'pending' | 'indexed' | 'quarantined';
  reason?: string;
  modelVersion?: string;
  label?: string;
  pseudoLabel?: string;
  confidence?: number;
}

export async function imageStatus(deps: StatusDeps, key: string): Promise<ImageStatus> {
  const id = imageIdForKey(key);
  if (!(await deps.store.head(deps.imagesBucket, key))) throw new NotFoundError(`no image with key "${key}"`);
  const quarantined = await deps.store.get(deps.artifactsBucket, artifactKeys.quarantine(id));
  if (quarantined) {
    return { key, state: 'quarantined', reason: parseJsonObject(quarantined, QuarantineRecordSchema).reason };
  }
  const pointer = await deps.models.servingPointer();
  const index = pointer ? await deps.indexes.forReading(pointer) : undefined;
  const [record] = index ? await index.get([id]) : [];
  if (record) {
    const { modelVersion, label, pseudoLabel, confidence } = record.metadata;
    return { key, state: 'indexed', modelVersion, ...defined({ label, pseudoLabel, confidence }) };
  }
  const labelBody = await deps.store.get(deps.artifactsBucket, artifactKeys.label(id));
  const label = labelBody ? parseJsonObject(labelBody, LabelRecordSchema).label : undefined;
  return { key, state: 'pending', ...defined({ label }) };
}

export interface Health {
  status: 'ok';
  servingModel: string | null;
  indexed: number;
  pending: number;
  quarantined: number;
}

export async function health(deps: StatusDeps): Promise<Health> {
  const pointer = await deps.models.servingPointer();
  const index = pointer ? await deps.indexes.forReading(pointer) : undefined;
  const depths = await Promise.all(deps.pendingQueues.map((q) => q.depth()));
  // Stored counters: O(1) requests however many images there are (seeded by one listing the first time).
  const quarantined = await new StoredCounters(deps.store, deps.artifactsBucket).read(QUARANTINE_COUNTER, async () => {
    let n = 0;
    for await (const _obj of deps.store.list(deps.artifactsBucket, artifactKeys.quarantinePrefix)) n += 1;
    return n;
  });
  return {
    status: 'ok',
    servingModel: pointer?.version ?? null,
    indexed: index ? await index.count() : 0,
    pending: depths.reduce((n, d) => n + d.visible + d.inFlight, 0),
    quarantined,
  };
}

interface RolloutSummary {
  state: 'backfilling' | 'serving' | 'superseded' | 'rolled-back';
  done: number;
  total: number;
}

interface ModelSummary {
  version: string;
  index: string;
  createdAt: string;
  parent: string | null;
  metrics: Record<string, unknown>;
  gate: { passed: boolean; reasons: string[] };
  rollout?: RolloutSummary;
}

export interface ModelsView {
  serving: ModelSummary | null;
  candidate?: ModelSummary;
  history: ModelSummary[];
  runs: TrainingRun[];
}

const RECENT_RUNS = 20;

export async function modelsView(deps: Pick<StatusDeps, 'models' | 'store' | 'artifactsBucket' | 'indexes'>): Promise<ModelsView> {
  const [serving, candidate, manifests] = await Promise.all([deps.models.servingPointer(), deps.models.candidatePointer(), deps.models.listManifests()]);
  const rollouts = new Map<string, RolloutRecord>();
  for await (const obj of deps.store.list(deps.artifactsBucket, 'rollouts/')) {
    const body = await deps.store.get(deps.artifactsBucket, obj.key);
    if (body) {
      const r = parseJsonObject(body, RolloutRecordSchema);
      rollouts.set(r.version, r);
    }
  }
  const count = async (p: ModelPointer | undefined) => (p ? ((await (await deps.indexes.forReading(p))?.count()) ?? 0) : 0);
  const servingCount = await count(serving);
  const candidateCount = candidate ? await count(candidate) : 0;
  const rolloutOf = (version: string): RolloutSummary | undefined => {
    if (candidate?.version === version) return { state: 'backfilling', done: candidateCount, total: servingCount };
    const r = rollouts.get(version);
    if (r) return { state: r.state, done: r.enqueued, total: r.enqueued };
    return serving?.version === version ? { state: 'serving', done: servingCount, total: servingCount } : undefined;
  };
  const summary = (m: ModelManifest, pointer?: ModelPointer): ModelSummary => {
    const rollout = rolloutOf(m.version);
    return {
      version: m.version,
      index: pointer?.index ?? indexNameForVersion(m.version),
      createdAt: m.createdAt,
      parent: m.parent,
      metrics: m.metrics,
      gate: m.gate,
      ...(rollout ? { rollout } : {}),
    };
  };
  const byVersion = new Map(manifests.map((m) => [m.version, m]));
  const servingManifest = serving ? byVersion.get(serving.version) : undefined;
  const candidateManifest = candidate ? byVersion.get(candidate.version) : undefined;
  return {
    serving: servingManifest ? summary(servingManifest, serving) : null,
    ...(candidateManifest ? { candidate: summary(candidateManifest, candidate) } : {}),
    history: manifests.map((m) => summary(m)).reverse(),
    runs: await recentRuns(deps),
  };
}

/** `GET /models/report?version=`: a version's report (metrics, gate, and a run's training curves). */
export async function modelReport(deps: Pick<StatusDeps, 'store' | 'artifactsBucket'>, version: string): Promise<ModelReport> {
  const body = await deps.store.get(deps.artifactsBucket, artifactKeys.report(version));
  if (!body) throw new NotFoundError(`no report for version "${version}" (versions made by init have none)`);
  return parseJsonObject(body, ModelReportSchema);
}

async function recentRuns(deps: Pick<StatusDeps, 'store' | 'artifactsBucket'>): Promise<TrainingRun[]> {
  const keys: Array<{ key: string; at: number }> = [];
  for await (const obj of deps.store.list(deps.artifactsBucket, artifactKeys.runsPrefix)) keys.push({ key: obj.key, at: obj.lastModified?.getTime() ?? 0 });
  keys.sort((a, b) => b.at - a.at);
  const runs = await Promise.all(keys.slice(0, RECENT_RUNS).map(async ({ key }) => deps.store.get(deps.artifactsBucket, key)));
  return runs.filter((b): b is Buffer => !!b).map((b) => parseJsonObject(b, TrainingRunSchema));
}

/** `o` without its undefined fields (so a JSON answer has no `"label": undefined` to drop or keep). */
export function defined<T extends Record<string, unknown>>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

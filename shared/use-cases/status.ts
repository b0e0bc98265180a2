/** What the pipeline knows: per image, overall health, and the model versions. */
import { artifactKeys } from '../artifact-keys';
import { NotFoundError } from '../errors';
import { imageIdForKey, indexNameForVersion } from '../ids';
import type { IndexResolver } from '../index-resolver';
import type { ModelRegistry } from '../model-registry';
import type { ObjectStore } from '../ports/object-store';
import type { Queue } from '../ports/queue';
import { LabelRecordSchema, QuarantineRecordSchema, type ModelManifest, type ModelPointer } from '../schemas';

export interface StatusDeps {
  store: ObjectStore;
  imagesBucket: string;
  artifactsBucket: string;
  models: ModelRegistry;
  indexes: IndexResolver;
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
    return { key, state: 'quarantined', reason: QuarantineRecordSchema.parse(JSON.parse(quarantined.toString('utf8'))).reason };
  }
  const pointer = await deps.models.servingPointer();
  const index = pointer ? await deps.indexes.forReading(pointer) : undefined;
  const [record] = index ? await index.get([id]) : [];
  if (record) {
    const { modelVersion, label, pseudoLabel, confidence } = record.metadata;
    return { key, state: 'indexed', modelVersion, ...defined({ label, pseudoLabel, confidence }) };
  }
  const labelBody = await deps.store.get(deps.artifactsBucket, artifactKeys.label(id));
  const label = labelBody ? LabelRecordSchema.parse(JSON.parse(labelBody.toString('utf8'))).label : undefined;
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
  let quarantined = 0;
  for await (const _obj of deps.store.list(deps.artifactsBucket, artifactKeys.quarantinePrefix)) quarantined += 1;
  return {
    status: 'ok',
    servingModel: pointer?.version ?? null,
    indexed: index ? await index.count() : 0,
    pending: depths.reduce((n, d) => n + d.visible + d.inFlight, 0),
    quarantined,
  };
}

interface ModelSummary {
  version: string;
  index: string;
  createdAt: string;
  parent: string | null;
  metrics: Record<string, unknown>;
  gate: { passed: boolean; reasons: string[] };
}

export interface ModelsView {
  serving: ModelSummary | null;
  candidate?: ModelSummary;
  history: ModelSummary[];
}

export async function modelsView(deps: Pick<StatusDeps, 'models'>): Promise<ModelsView> {
  const [serving, candidate, manifests] = await Promise.all([
    deps.models.servingPointer(),
    deps.models.candidatePointer(),
    deps.models.listManifests(),
  ]);
  const byVersion = new Map(manifests.map((m) => [m.version, m]));
  const summary = (m: ModelManifest, pointer?: ModelPointer): ModelSummary => ({
    version: m.version,
    index: pointer?.index ?? indexNameForVersion(m.version),
    createdAt: m.createdAt,
    parent: m.parent,
    metrics: m.metrics,
    gate: m.gate,
  });
  const servingManifest = serving ? byVersion.get(serving.version) : undefined;
  const candidateManifest = candidate ? byVersion.get(candidate.version) : undefined;
  return {
    serving: servingManifest ? summary(servingManifest, serving) : null,
    ...(candidateManifest ? { candidate: summary(candidateManifest, candidate) } : {}),
    history: manifests.map((m) => summary(m)).reverse(),
  };
}

function defined<T extends Record<string, unknown>>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

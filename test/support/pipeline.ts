/** A pipeline wired to in-memory fakes (object store, queues, fake encoder) and a temporary on-disk index. */
import { DEFAULT_DERIVED } from '../../shared/derived-layout';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalVectorStore } from '../../shared/adapters/local-vector-index';
import { IndexResolver } from '../../shared/index-resolver';
import { ModelRegistry } from '../../shared/model-registry';
import { FakeEncoderFactory, InMemoryObjectStore, InMemoryQueue, publishTestModel, testManifest } from './fakes';

const openStores: LocalVectorStore[] = [];

/** Closes the indexes of every pipeline made by the current test (registered in test/support/after-each.ts). */
export async function closeFakePipelines(): Promise<void> {
  for (const store of openStores.splice(0)) await store.close();
}

export const IMAGES = 'images';
export const ARTIFACTS = 'artifacts';

export async function fakePipeline(options: { publish?: boolean } = {}) {
  const store = new InMemoryObjectStore();
  if (options.publish ?? true) await publishTestModel(store, ARTIFACTS, testManifest('v0'), 'serving');
  const encoders = new FakeEncoderFactory();
  const models = new ModelRegistry(store, ARTIFACTS, encoders, { pointerTtlMs: 0 });
  const vectorStore = new LocalVectorStore(mkdtempSync(join(tmpdir(), 'pipeline-vectors-')));
  openStores.push(vectorStore);
  const indexes = new IndexResolver(vectorStore);
  const embedQueue = new InMemoryQueue();
  const ingestQueue = new InMemoryQueue();
  const settings = {
    maxImageBytes: 1_000_000,
    maxImagePixels: 10_000_000,
    augmentViews: 2,
    derived: { ...DEFAULT_DERIVED },
    retrain: { minNewLabels: 0, intervalMinutes: 0, maxMinutes: 5 },
    indexRetentionMs: 3_600_000,
  };
  return {
    store,
    encoders,
    models,
    vectorStore,
    indexes,
    embedQueue,
    ingestQueue,
    settings,
    imagesBucket: IMAGES,
    artifactsBucket: ARTIFACTS,
    pendingQueues: [ingestQueue, embedQueue],
    now: () => new Date('2026-11-28T12:00:00.000Z'),
  };
}

export type FakePipeline = Awaited<ReturnType<typeof fakePipeline>>;

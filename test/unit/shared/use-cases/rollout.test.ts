import { artifactKeys } from '../../../../shared/artifact-keys';
import { imageIdForKey } from '../../../../shared/ids';
import { IndexResolver } from '../../../../shared/index-resolver';
import { ModelRegistry } from '../../../../shared/model-registry';
import type { Queue } from '../../../../shared/ports/queue';
import type { EmbedMessage } from '../../../../shared/schemas';
import { augmentImage } from '../../../../shared/use-cases/augment-image';
import { embedImage } from '../../../../shared/use-cases/embed-image';
import { advanceRollout, readRollout } from '../../../../shared/use-cases/rollout';
import { modelsView } from '../../../../shared/use-cases/status';
import { publishTestModel, testManifest } from '../../../support/fakes';
import { solidPng } from '../../../support/images';
import { ARTIFACTS, fakePipeline, IMAGES, type FakePipeline } from '../../../support/pipeline';

/** A queue whose messages are taken out when processed, so its depth drains to zero. */
class DrainableQueue implements Queue {
  pending: string[] = [];
  async send(bodies: unknown[]) {
    this.pending.push(...bodies.map((b) => JSON.stringify(b)));
  }
  async depth() {
    return { visible: this.pending.length, inFlight: 0 };
  }
  /** Takes the first `count` messages (all by default) out of the queue. */
  take(count = this.pending.length): EmbedMessage[] {
    return this.pending.splice(0, count).map((s) => JSON.parse(s) as EmbedMessage);
  }
}

async function withImages(n: number): Promise<FakePipeline> {
  const p = await fakePipeline();
  for (let i = 0; i < n; i += 1) {
    const key = `img-${i}.png`;
    await p.store.put(IMAGES, key, await solidPng(8, 8, [i * 20, 100, 200 - i * 10]));
    await augmentImage(p, { kind: 'created', bucket: IMAGES, key, sequencer: '1' });
  }
  for (const m of p.embedQueue.messages<EmbedMessage>()) await embedImage(p, m);
  return p;
}

/** `n` images embedded by v0, a candidate v1 that passed its gate, and an empty embed queue. */
async function withCandidate(n: number): Promise<{ p: FakePipeline; queue: DrainableQueue }> {
  const p = await withImages(n);
  await publishTestModel(p.store, ARTIFACTS, testManifest('v1', { parent: 'v0' }), 'candidate');
  return { p, queue: new DrainableQueue() };
}

/** Fresh in-memory state over the same storage: what a process restart after a crash sees. */
function restarted(p: FakePipeline, queue: DrainableQueue) {
  const models = new ModelRegistry(p.store, ARTIFACTS, p.encoders, { pointerTtlMs: 0 });
  return { ...p, models, indexes: new IndexResolver(p.vectorStore), embedQueue: queue, pageSize: 2 };
}

describe('advanceRollout', () => {
  it('is idle without a candidate', async () => {
    const p = await withImages(1);
    expect(await advanceRollout({ ...p, embedQueue: new DrainableQueue() })).toEqual({ state: 'idle' });
  });

  it('re-embeds every image into the candidate index page by page, then flips serving atomically', async () => {
    const { p, queue } = await withCandidate(5);
    const deps = { ...p, embedQueue: queue, pageSize: 2 };
    const ticks: string[] = [];
    for (let i = 0; i < 10; i += 1) {
      const tick = await advanceRollout(deps);
      ticks.push(tick.state);
      if (tick.state === 'flipped') break;
      for (const m of queue.take()) {
        expect(m.versions).toEqual(['v1']);
        await embedImage(deps, m);
      }
    }
    expect(ticks.at(-1)).toBe('flipped');
    expect(p.store.json(ARTIFACTS, 'models/serving.json')).toMatchObject({ version: 'v1', index: 'emb-v1' });
    expect(await p.store.get(ARTIFACTS, 'models/candidate.json')).toBeUndefined();
    const v1 = (await p.vectorStore.openIndex('emb-v1'))!;
    expect(await v1.count()).toBe(5);
    expect((await v1.get([imageIdForKey('img-3.png')]))[0]!.metadata.modelVersion).toBe('v1');
    expect(await (await p.vectorStore.openIndex('emb-v0'))!.count()).toBe(5);
    expect(await readRollout(p, 'v1')).toMatchObject({ state: 'serving', previous: 'v0', enqueued: 5, enqueueComplete: true });
  });

  it('keeps the embed queue topped up to its backlog: several pages a tick while it drains, none while it is full', async () => {
    const { p, queue } = await withCandidate(13);
    const deps = { ...p, embedQueue: queue, pageSize: 2, backlog: 5 };
    // Empty queue: pages until 5 are waiting (three pages of 2).
    await advanceRollout(deps);
    expect(queue.pending).toHaveLength(6);
    // Nothing drained: the queue holds more than the backlog, so the tick sends nothing.
    await advanceRollout(deps);
    expect(queue.pending).toHaveLength(6);
    expect(await readRollout(p, 'v1')).toMatchObject({ enqueued: 6, enqueueComplete: false });
    // Four drained, two left: room for 3, two pages go.
    for (const m of queue.take(4)) await embedImage(deps, m);
    await advanceRollout(deps);
    expect(queue.pending).toHaveLength(6);
    expect(await readRollout(p, 'v1')).toMatchObject({ enqueued: 10 });
    // Drained, and run to the end: every image once, then the flip.
    let state = '';
    for (let i = 0; i < 10 && state !== 'flipped'; i += 1) {
      for (const m of queue.take()) await embedImage(deps, m);
      state = (await advanceRollout(deps)).state;
    }
    expect(state).toBe('flipped');
    expect(await readRollout(p, 'v1')).toMatchObject({ enqueued: 13, enqueueComplete: true, state: 'serving' });
    expect(await (await p.vectorStore.openIndex('emb-v1'))!.count()).toBe(13);
  });

  it('records a rollout that starts while the embed queue is full, and sends its first page once it drains', async () => {
    const { p, queue } = await withCandidate(3);
    await queue.send([{ busy: 1 }, { busy: 2 }]);
    const deps = { ...p, embedQueue: queue, pageSize: 2, backlog: 2 };
    expect(await advanceRollout(deps)).toMatchObject({ state: 'backfilling', enqueued: 0 });
    const started = await readRollout(p, 'v1');
    expect(started).toMatchObject({ state: 'backfilling', enqueued: 0, cursor: null });
    queue.take();
    await advanceRollout(deps);
    expect(queue.pending).toHaveLength(2);
    expect(await readRollout(p, 'v1')).toMatchObject({ enqueued: 2, startedAt: started!.startedAt });
  });

  it('without a backlog sends one page a tick into an empty queue, as it always did', async () => {
    const { p, queue } = await withCandidate(5);
    const deps = { ...p, embedQueue: queue, pageSize: 2 };
    await advanceRollout(deps);
    expect(queue.take()).toHaveLength(2);
    await advanceRollout(deps);
    expect(queue.pending).toHaveLength(2);
    // Not drained: nothing more.
    await advanceRollout(deps);
    expect(queue.pending).toHaveLength(2);
  });

  it('resumes after a crash before any tick and recovers re-embed messages that were lost', async () => {
    const { p, queue } = await withCandidate(5);
    let flipped = false;
    for (let i = 0; i < 20 && !flipped; i += 1) {
      const deps = restarted(p, queue);
      flipped = (await advanceRollout(deps)).state === 'flipped';
      const messages = queue.take();
      // The first page is lost with the crash; the rest are processed.
      if (i === 0) continue;
      for (const m of messages) await embedImage(deps, m);
    }
    expect(flipped).toBe(true);
    expect(await (await p.vectorStore.openIndex('emb-v1'))!.count()).toBe(5);
    expect(p.store.json(ARTIFACTS, 'models/serving.json')).toMatchObject({ version: 'v1' });
  });

  it('finishes a rollout that crashed between the flip and removing the candidate pointer', async () => {
    const { p, queue } = await withCandidate(2);
    const deps = { ...p, embedQueue: queue, pageSize: 10 };
    await advanceRollout(deps);
    for (const m of queue.take()) await embedImage(deps, m);
    // The crash: serving.json already points at v1, candidate.json is still there, the record says backfilling.
    await p.store.put(ARTIFACTS, 'models/serving.json', JSON.stringify({ version: 'v1', index: 'emb-v1', updatedAt: '2026-11-28T00:00:00.000Z' }));
    expect(await advanceRollout(restarted(p, queue))).toEqual({ state: 'discarded', version: 'v1', reason: 'already serving' });
    expect(await p.store.get(ARTIFACTS, 'models/candidate.json')).toBeUndefined();
    expect(await readRollout(p, 'v1')).toMatchObject({ state: 'serving', previous: 'v0' });
  });

  it('never serves a version whose gate failed', async () => {
    const p = await withImages(1);
    await publishTestModel(p.store, ARTIFACTS, testManifest('v1', { gate: { passed: false, reasons: ['worse'] } }), 'candidate');
    expect(await advanceRollout({ ...p, embedQueue: new DrainableQueue() })).toEqual({ state: 'discarded', version: 'v1', reason: 'its gate did not pass' });
    expect(p.store.json(ARTIFACTS, 'models/serving.json')).toMatchObject({ version: 'v0' });
  });

  it('attaches the candidate version\u2019s pseudo-labels, and GET /models shows the rollout progress', async () => {
    const p = await withImages(3);
    await publishTestModel(p.store, ARTIFACTS, testManifest('v1', { parent: 'v0' }), 'candidate');
    const id = imageIdForKey('img-1.png');
    await p.store.put(
      ARTIFACTS,
      artifactKeys.pseudoLabels('v1'),
      JSON.stringify({
        schemaVersion: 1,
        version: 'v1',
        createdAt: '2026-11-28T00:00:00.000Z',
        thresholds: { warm: 0.8 },
        items: [{ imageId: id, key: 'img-1.png', label: 'warm', confidence: 0.93 }],
      }),
    );
    const queue = new DrainableQueue();
    const deps = { ...p, models: new ModelRegistry(p.store, ARTIFACTS, p.encoders, { pointerTtlMs: 0 }), embedQueue: queue, pageSize: 2 };
    await advanceRollout(deps);
    for (const m of queue.take()) await embedImage(deps, m);
    const view = await modelsView(deps);
    expect(view.candidate).toMatchObject({ version: 'v1', rollout: { state: 'backfilling', done: 2, total: 3 } });
    const [rec] = await (await p.vectorStore.openIndex('emb-v1'))!.get([id]);
    expect(rec!.metadata).toEqual({ key: 'img-1.png', modelVersion: 'v1', pseudoLabel: 'warm', confidence: 0.93 });
  });
});

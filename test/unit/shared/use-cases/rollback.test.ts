import type { EmbedMessage } from '../../../../shared/schemas';
import { augmentImage } from '../../../../shared/use-cases/augment-image';
import { embedImage } from '../../../../shared/use-cases/embed-image';
import { pruneIndexes, rollback } from '../../../../shared/use-cases/rollback';
import { advanceRollout, readRollout } from '../../../../shared/use-cases/rollout';
import { publishTestModel, testManifest } from '../../../support/fakes';
import { solidPng } from '../../../support/images';
import { ARTIFACTS, fakePipeline, IMAGES } from '../../../support/pipeline';

async function rolledOutTo(version: string, p: Awaited<ReturnType<typeof fakePipeline>>, parent: string) {
  await publishTestModel(p.store, ARTIFACTS, testManifest(version, { parent }), 'candidate');
  for (let i = 0; i < 10; i += 1) {
    const tick = await advanceRollout({ ...p, pageSize: 10 });
    if (tick.state === 'flipped') return;
    for (const m of p.embedQueue.sent.splice(0).map((s) => JSON.parse(s) as EmbedMessage)) await embedImage(p, m);
  }
  throw new Error('rollout did not finish');
}

describe('rollback and index retention', () => {
  it('serves the previous version again, keeps its index, and prunes retired indexes after the retention', async () => {
    let now = Date.parse('2026-11-28T00:00:00Z');
    const p = { ...(await fakePipeline()), now: () => new Date(now) };
    await p.store.put(IMAGES, 'a.png', await solidPng(8, 8, [1, 2, 3]));
    await augmentImage(p, { kind: 'created', bucket: IMAGES, key: 'a.png', sequencer: '1' });
    for (const m of p.embedQueue.sent.splice(0).map((s) => JSON.parse(s) as EmbedMessage)) await embedImage(p, m);
    await rolledOutTo('v1', p, 'v0');
    await rolledOutTo('v2', p, 'v1');
    expect(await readRollout(p, 'v1')).toMatchObject({ state: 'superseded' });

    expect(await rollback(p)).toEqual({ serving: 'v1', previous: 'v2' });
    expect(p.store.json(ARTIFACTS, 'models/serving.json')).toMatchObject({ version: 'v1', index: 'emb-v1' });
    expect(await readRollout(p, 'v2')).toMatchObject({ state: 'rolled-back' });

    expect(await pruneIndexes(p, 3_600_000)).toEqual([]);
    now += 3_600_001;
    // emb-v1 serves, emb-v0 is v1's rollback target; emb-v2 was rolled back an hour ago.
    expect(await pruneIndexes(p, 3_600_000)).toEqual(['emb-v2']);
    expect((await p.vectorStore.listIndexes()).sort()).toEqual(['emb-v0', 'emb-v1']);
  });

  it('refuses with 409 when there is nothing to roll back to', async () => {
    const p = await fakePipeline();
    await expect(rollback(p)).rejects.toMatchObject({ status: 409, code: 'no_previous_version' });
  });
});

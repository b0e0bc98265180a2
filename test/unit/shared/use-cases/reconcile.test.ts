import { imageIdForKey } from '../../../../shared/ids';
import { augmentImage } from '../../../../shared/use-cases/augment-image';
import { embedImage } from '../../../../shared/use-cases/embed-image';
import { reconcile } from '../../../../shared/use-cases/reconcile';
import { solidPng } from '../../../support/images';
import { fakePipeline, IMAGES } from '../../../support/pipeline';

describe('reconcile', () => {
  it('re-queues images without a vector, leaves indexed ones alone, and removes orphan vectors', async () => {
    const p = await fakePipeline();
    for (const key of ['done.png', 'gone.png']) {
      await p.store.put(IMAGES, key, await solidPng(8, 8, [9, 9, 9]));
      await augmentImage(p, { kind: 'created', bucket: IMAGES, key, sequencer: '1' });
    }
    for (const m of p.embedQueue.messages<{ key: string; imageId: string; sequencer: string }>()) await embedImage(p, m);
    await p.store.delete(IMAGES, 'gone.png');
    await p.store.put(IMAGES, 'lost event.png', await solidPng(8, 8, [1, 1, 1]));

    const result = await reconcile(p);
    expect(result).toEqual({ images: 2, enqueued: 1, orphansRemoved: 1 });
    const body = p.ingestQueue.messages<{ Records: Array<{ eventName: string; s3: { object: { key: string } } }> }>()[0]!;
    expect(body.Records[0]).toMatchObject({ eventName: 'ObjectCreated:Put', s3: { object: { key: 'lost+event.png' } } });
    expect(await (await p.vectorStore.openIndex('emb-v0'))!.get([imageIdForKey('gone.png')])).toEqual([]);
  });

  it('re-queues an image uploaded again after it was processed', async () => {
    const p = await fakePipeline();
    await p.store.put(IMAGES, 'a.png', await solidPng(8, 8, [9, 9, 9]));
    await augmentImage(p, { kind: 'created', bucket: IMAGES, key: 'a.png', sequencer: '1' });
    await embedImage(p, p.embedQueue.messages<{ key: string; imageId: string; sequencer: string }>()[0]!);
    expect((await reconcile(p)).enqueued).toBe(0);
    await p.store.put(IMAGES, 'a.png', await solidPng(8, 8, [200, 9, 9]));
    expect((await reconcile(p)).enqueued).toBe(1);
  });
});

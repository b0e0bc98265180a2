import type { SQSEvent } from 'aws-lambda';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { createAugmentHandler } from '../../../../functions/augment/handler';
import { createEmbedHandler } from '../../../../functions/embed/handler';
import { s3EventBody } from '../../../../shared/s3-event';
import { gradientImage } from '../../../support/images';
import { fakePipeline, IMAGES } from '../../../support/pipeline';

const quiet = () => new Logger({ logLevel: 'SILENT' });
const sqsEvent = (bodies: string[]): SQSEvent => ({
  Records: bodies.map((body, i) => ({
    messageId: `m${i}`,
    receiptHandle: `r${i}`,
    body,
    attributes: { ApproximateReceiveCount: '1', SentTimestamp: '0', SenderId: 's', ApproximateFirstReceiveTimestamp: '0' },
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:ingest',
    awsRegion: 'us-east-1',
  })),
});
const created = (key: string) => s3EventBody({ eventName: 'ObjectCreated:Put', bucket: IMAGES, key, size: 1, etag: 'e', sequencer: '0A' });

describe('augment handler', () => {
  it('processes S3 notifications, URL-decoding keys, and reports only failed records', async () => {
    const p = await fakePipeline();
    await p.store.put(IMAGES, 'dir/a b+c ü.png', await gradientImage(20, 20));
    const handler = createAugmentHandler({ ...p, embedQueue: p.embedQueue }, quiet());
    const res = await handler(sqsEvent([created('dir/a b+c ü.png'), 'not json', JSON.stringify({ Records: [{ nope: 1 }] })]));
    expect(res.batchItemFailures).toEqual([{ itemIdentifier: 'm1' }, { itemIdentifier: 'm2' }]);
    expect(p.embedQueue.messages()).toEqual([expect.objectContaining({ key: 'dir/a b+c ü.png' })]);
  });

  it('emits Powertools metrics per outcome and per batch when given a Metrics instance', async () => {
    const p = await fakePipeline();
    await p.store.put(IMAGES, 'a.png', await gradientImage(20, 20));
    await p.store.put(IMAGES, 'b.txt', 'text');
    const metrics = new Metrics({ namespace: 'Test', serviceName: 'augment' });
    const added = jest.spyOn(metrics, 'addMetric');
    const published = jest.spyOn(metrics, 'publishStoredMetrics').mockImplementation(() => metrics);
    await createAugmentHandler({ ...p, embedQueue: p.embedQueue }, quiet(), { metrics })(sqsEvent([created('a.png'), created('b.txt'), 'bad']));
    const calls = added.mock.calls.map(([name, , value]) => `${name}=${value}`).sort();
    expect(calls).toEqual(['ImagesAugmented=1', 'ImagesQuarantined=1', 'RecordsFailed=1', 'RecordsSucceeded=2']);
    expect(published).toHaveBeenCalledTimes(1);
  });

  it('acknowledges s3:TestEvent without doing anything', async () => {
    const p = await fakePipeline();
    const handler = createAugmentHandler({ ...p, embedQueue: p.embedQueue }, quiet());
    const test = JSON.stringify({ Service: 'Amazon S3', Event: 's3:TestEvent', Time: '2026-11-28T00:00:00Z', Bucket: IMAGES });
    expect(await handler(sqsEvent([test]))).toEqual({ batchItemFailures: [] });
    expect(p.embedQueue.sent).toHaveLength(0);
  });

  it('reports every record when all fail instead of throwing', async () => {
    const p = await fakePipeline();
    await p.store.put(IMAGES, 'a.png', await gradientImage(8, 8));
    const down = { send: async () => Promise.reject(new Error('embed queue unavailable')), depth: p.embedQueue.depth.bind(p.embedQueue) };
    const handler = createAugmentHandler({ ...p, embedQueue: down }, quiet());
    expect((await handler(sqsEvent([created('a.png')]))).batchItemFailures).toEqual([{ itemIdentifier: 'm0' }]);
  });
});

describe('embed handler', () => {
  it('rejects malformed embed messages per record', async () => {
    const p = await fakePipeline();
    const handler = createEmbedHandler(p, quiet());
    const res = await handler(
      sqsEvent([JSON.stringify({ key: 'a', imageId: 'short', sequencer: '' }), JSON.stringify({ key: 'gone.png', imageId: 'a'.repeat(32), sequencer: '1' })]),
    );
    expect(res.batchItemFailures).toEqual([{ itemIdentifier: 'm0' }]);
  });
});

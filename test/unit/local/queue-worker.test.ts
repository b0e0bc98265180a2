import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SQSEvent } from 'aws-lambda';
import { LocalQueue } from '../../../shared/adapters/local-queue';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { Logger } from '@aws-lambda-powertools/logger';
import { createApiHandler } from '../../../functions/api/handler';
import { createAugmentHandler } from '../../../functions/augment/handler';
import { backoffMs, QueueWorker, RecordErrors } from '../../../local/queue-worker';
import { LocalDeadLetterQueue } from '../../../shared/adapters/local-dead-letters';
import { s3EventBody } from '../../../shared/s3-event';
import { fakePipeline, IMAGES } from '../../support/pipeline';

const apiEvent = (httpMethod: string, path: string) =>
  ({
    resource: path,
    path,
    httpMethod,
    headers: {},
    queryStringParameters: null,
    body: null,
    isBase64Encoded: false,
    requestContext: {},
  }) as unknown as APIGatewayProxyEvent;

describe('QueueWorker', () => {
  it('delivers SQS-shaped events, deletes successes and retries failures until they are dead-lettered', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'worker-'));
    const dlq = await LocalQueue.open(dir, 'dlq', { visibilityTimeoutMs: 1000, maxReceives: 99 });
    const queue = await LocalQueue.open(dir, 'q', { visibilityTimeoutMs: 1000, maxReceives: 3, deadLetterQueue: dlq });
    await queue.send(['ok', 'poison']);
    const seen: SQSEvent[] = [];
    const worker = new QueueWorker({
      queue,
      batchSize: 10,
      concurrency: 1,
      backoffBaseMs: 1,
      maxBackoffMs: 5,
      handler: async (event) => {
        seen.push(event);
        return { batchItemFailures: event.Records.filter((r) => r.body === 'poison').map((r) => ({ itemIdentifier: r.messageId })) };
      },
    });
    worker.start();
    const deadline = Date.now() + 5000;
    while (dlq.peek().length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await worker.stop();
    expect(seen[0]!.Records[0]).toMatchObject({ eventSource: 'aws:sqs', attributes: { ApproximateReceiveCount: '1' } });
    expect(seen.flatMap((e) => e.Records.map((r) => r.body)).filter((b) => b === 'poison')).toHaveLength(3);
    expect(dlq.peek().map((m) => m.body)).toEqual(['poison']);
    expect(await queue.depth()).toEqual({ visible: 0, inFlight: 0 });
    await queue.close();
    await dlq.close();
  });

  it('backs off exponentially with jitter, capped', () => {
    expect(backoffMs(1, 1000, 60_000, () => 0)).toBe(500);
    expect(backoffMs(3, 1000, 60_000, () => 1)).toBe(4000);
    expect(backoffMs(20, 1000, 60_000, () => 1)).toBe(60_000);
  });
});

describe('QueueWorker with a real handler', () => {
  it("dead-letters a record with the handler's own error, as GET /dead-letters shows it", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'worker-errors-'));
    const dlq = await LocalQueue.open(dir, 'ingest-dlq', { visibilityTimeoutMs: 1000, maxReceives: 99 });
    const ingest = await LocalQueue.open(dir, 'ingest', { visibilityTimeoutMs: 1000, maxReceives: 2, deadLetterQueue: dlq });
    try {
      const p = await fakePipeline();
      // The augment use case fails on the image's bytes: the store refuses to read them.
      p.store.get = async () => {
        throw new Error('disk on fire while reading images/boom.png');
      };
      const errors = new RecordErrors();
      const handler = createAugmentHandler({ ...p, embedQueue: p.embedQueue }, new Logger({ logLevel: 'SILENT' }), { onRecordFailure: errors.onRecordFailure });
      const worker = new QueueWorker({ queue: ingest, handler, recordErrors: errors, batchSize: 10, concurrency: 1, backoffBaseMs: 1, maxBackoffMs: 2 });
      await ingest.send([s3EventBody({ eventName: 'ObjectCreated:Put', bucket: IMAGES, key: 'boom.png', size: 10, etag: 'e', sequencer: '01' })]);
      worker.start();
      const deadline = Date.now() + 5000;
      while (dlq.peek().length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      await worker.stop();

      const api = createApiHandler(
        { ...p, launcher: { launch: async () => undefined }, deadLetters: [new LocalDeadLetterQueue('ingest', dlq, ingest)] },
        new Logger({ logLevel: 'SILENT' }),
      );
      const reply = await api(apiEvent('GET', '/dead-letters'));
      const body = JSON.parse(reply.body) as { queues: Array<{ queue: string; count: number; messages: Array<{ error?: string }> }> };
      expect(body.queues[0]).toMatchObject({ queue: 'ingest', count: 1 });
      expect(body.queues[0]!.messages[0]!.error).toBe('disk on fire while reading images/boom.png');
    } finally {
      await ingest.close();
      await dlq.close();
    }
  });
});

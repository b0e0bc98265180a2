import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Logger } from '@aws-lambda-powertools/logger';
import { GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient, StartMessageMoveTaskCommand } from '@aws-sdk/client-sqs';
import type { SQSEvent } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { sqsBatchHandler } from '../../../../functions/sqs-edge';
import { LocalDeadLetterQueue } from '../../../../shared/adapters/local-dead-letters';
import { LocalQueue } from '../../../../shared/adapters/local-queue';
import { SqsDeadLetterQueue } from '../../../../shared/adapters/sqs-dead-letters';
import { listDeadLetters, redriveDeadLetters } from '../../../../shared/use-cases/dead-letters';
import { InMemoryObjectStore } from '../../../support/fakes';

const sqs = mockClient(SQSClient);
const DLQ = { url: 'https://sqs.us-east-1.amazonaws.com/123/ingest-dlq', arn: 'arn:aws:sqs:us-east-1:123:ingest-dlq' };

describe('SqsDeadLetterQueue', () => {
  beforeEach(() => sqs.reset());

  it('peeks with a zero visibility timeout and joins each message with its recorded error', async () => {
    const store = new InMemoryObjectStore();
    await store.put(
      'artifacts',
      'dead-letters/m-1.json',
      JSON.stringify({ queue: 'ingest', messageId: 'm-1', error: 'boom', receiveCount: 5, at: '2026-11-28T00:00:00.000Z' }),
    );
    sqs
      .on(ReceiveMessageCommand)
      .resolvesOnce({
        Messages: [
          { MessageId: 'm-1', Body: '{"a":1}', Attributes: { SentTimestamp: '1764288000000' } },
          { MessageId: 'm-2', Body: 'not json' },
        ],
      })
      .resolves({ Messages: [] });
    const letters = await new SqsDeadLetterQueue('ingest', new SQSClient({}), DLQ, { store, bucket: 'artifacts' }).peek(20);
    expect(letters).toEqual([
      { messageId: 'm-1', body: { a: 1 }, error: 'boom', sentAt: '2025-11-28T00:00:00.000Z' },
      { messageId: 'm-2', body: 'not json' },
    ]);
    const input = sqs.commandCalls(ReceiveMessageCommand)[0]!.args[0].input;
    expect(input).toMatchObject({ QueueUrl: DLQ.url, VisibilityTimeout: 0 });
  });

  it('redrives with a message move task back to the source queue', async () => {
    sqs.on(GetQueueAttributesCommand).resolves({ Attributes: { ApproximateNumberOfMessages: '3', ApproximateNumberOfMessagesNotVisible: '0' } });
    sqs.on(StartMessageMoveTaskCommand).resolves({ TaskHandle: 't' });
    const q = new SqsDeadLetterQueue('ingest', new SQSClient({}), DLQ, { store: new InMemoryObjectStore(), bucket: 'artifacts' });
    expect(await q.redrive()).toBe(3);
    expect(sqs.commandCalls(StartMessageMoveTaskCommand)[0]!.args[0].input).toEqual({ SourceArn: DLQ.arn });
  });
});

describe('the SQS edge on a last attempt', () => {
  const event = (receiveCount: number): SQSEvent =>
    ({
      Records: [{ messageId: `m-${receiveCount}`, body: '{}', attributes: { ApproximateReceiveCount: String(receiveCount) }, eventSource: 'aws:sqs' }],
    }) as unknown as SQSEvent;

  it('records the error only when the receive count reached maxReceiveCount, and still reports the failure', async () => {
    const recorded: string[] = [];
    const handler = sqsBatchHandler(new Logger({ logLevel: 'SILENT' }), async () => Promise.reject(new Error('poison')), {
      lastAttempt: { maxReceiveCount: 5, record: async (r, err, n) => void recorded.push(`${r.messageId}:${err.message}:${n}`) },
    });
    expect((await handler(event(4))).batchItemFailures).toEqual([{ itemIdentifier: 'm-4' }]);
    expect(recorded).toEqual([]);
    expect((await handler(event(5))).batchItemFailures).toEqual([{ itemIdentifier: 'm-5' }]);
    expect(recorded).toEqual(['m-5:poison:5']);
  });
});

describe('local dead letters through the use cases', () => {
  it('lists messages with their last error and redrives them to their source queue', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dlq-'));
    const dlq = await LocalQueue.open(dir, 'ingest-dlq', { visibilityTimeoutMs: 1000, maxReceives: 2 });
    const ingest = await LocalQueue.open(dir, 'ingest', { visibilityTimeoutMs: 1000, maxReceives: 2, deadLetterQueue: dlq });
    try {
      await ingest.send([{ poison: true }]);
      for (let i = 0; i < 2; i += 1) {
        const [m] = await ingest.receive(1, 0);
        await ingest.release(m!.receiptHandle, 0, `attempt ${i + 1} failed`);
      }
      expect(await ingest.receive(1, 0)).toEqual([]); // the third receive dead-letters it
      const deps = { deadLetters: [new LocalDeadLetterQueue('ingest', dlq, ingest)] };
      const view = await listDeadLetters(deps, 10);
      expect(view.queues).toEqual([{ queue: 'ingest', count: 1, messages: [expect.objectContaining({ body: { poison: true }, error: 'attempt 2 failed' })] }]);
      expect(await redriveDeadLetters(deps)).toEqual({ redriven: { ingest: 1 } });
      expect((await listDeadLetters(deps, 10)).queues[0]!.count).toBe(0);
      expect((await ingest.receive(1, 0))[0]!.body).toBe('{"poison":true}');
      await expect(redriveDeadLetters(deps, 'nope')).rejects.toThrow(/unknown queue "nope"/);
    } finally {
      await ingest.close();
      await dlq.close();
    }
  });
});

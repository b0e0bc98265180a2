/**
 * Amazon SQS dead-letter queues. SQS keeps no error with a message, so the queue-driven functions
 * write `dead-letters/<messageId>.json` ({error, at}) on a message's last attempt; peek joins it
 * back. Peeking receives with a zero visibility timeout, so messages stay in the queue; replay is
 * an SQS message move task back to the source queue.
 */
import { GetQueueAttributesCommand, ReceiveMessageCommand, StartMessageMoveTaskCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { artifactKeys } from '../artifact-keys';
import { parseBody, type DeadLetter, type DeadLetterQueue } from '../ports/dead-letters';
import type { ObjectStore } from '../ports/object-store';
import { DeadLetterRecordSchema } from '../schemas';
import { parseJsonObject } from '../json';

export class SqsDeadLetterQueue implements DeadLetterQueue {
  constructor(
    readonly name: string,
    private readonly client: SQSClient,
    private readonly dlq: { url: string; arn: string },
    private readonly errors: { store: ObjectStore; bucket: string },
  ) {}

  async count(): Promise<number> {
    const out = await this.client.send(
      new GetQueueAttributesCommand({ QueueUrl: this.dlq.url, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }),
    );
    return Number(out.Attributes?.ApproximateNumberOfMessages ?? 0) + Number(out.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0);
  }

  async peek(limit: number): Promise<DeadLetter[]> {
    const seen = new Map<string, DeadLetter>();
    for (let round = 0; round < 5 && seen.size < limit; round += 1) {
      const out = await this.client.send(
        new ReceiveMessageCommand({
          QueueUrl: this.dlq.url,
          MaxNumberOfMessages: Math.min(10, limit - seen.size),
          VisibilityTimeout: 0,
          WaitTimeSeconds: 0,
          MessageSystemAttributeNames: ['SentTimestamp'],
        }),
      );
      const messages = out.Messages ?? [];
      if (messages.length === 0) break;
      for (const m of messages) {
        if (!m.MessageId || seen.has(m.MessageId)) continue;
        const sent = Number(m.Attributes?.SentTimestamp ?? NaN);
        seen.set(m.MessageId, {
          messageId: m.MessageId,
          body: parseBody(m.Body ?? ''),
          ...(Number.isFinite(sent) ? { sentAt: new Date(sent).toISOString() } : {}),
        });
      }
    }
    const letters = [...seen.values()].slice(0, limit);
    await Promise.all(
      letters.map(async (l) => {
        const body = await this.errors.store.get(this.errors.bucket, artifactKeys.deadLetter(l.messageId));
        if (body) l.error = parseJsonObject(body, DeadLetterRecordSchema).error;
      }),
    );
    return letters;
  }

  async redrive(): Promise<number> {
    const count = await this.count();
    if (count === 0) return 0;
    // No destination: SQS moves the messages back to the queue they were dead-lettered from.
    await this.client.send(new StartMessageMoveTaskCommand({ SourceArn: this.dlq.arn }));
    return count;
  }
}

/**
 * Queue over Amazon SQS: SendMessageBatch in batches of at most 10 entries and 256 KiB in all (SQS's
 * limits per batch), failed entries retried with backoff.
 */
import { GetQueueAttributesCommand, SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { AWS_LIMITS } from '../aws-limits';
import type { Queue, QueueDepth } from '../ports/queue';

const { maxBatchEntries: SQS_BATCH, maxMessageBytes: SQS_BATCH_BYTES } = AWS_LIMITS.sqs;

export interface SqsQueueOptions {
  /** Attempts for entries SQS reports as failed (throttling, internal errors). */
  maxAttempts?: number;
  sleep?: (ms: number) => Promise<void>;
}

export class SqsQueue implements Queue {
  private readonly maxAttempts: number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(
    private readonly client: SQSClient,
    private readonly queueUrl: string,
    options: SqsQueueOptions = {},
  ) {
    this.maxAttempts = options.maxAttempts ?? 5;
    this.sleep = options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  async send(bodies: unknown[]): Promise<void> {
    const entries = bodies.map((b, i) => ({ Id: String(i), MessageBody: typeof b === 'string' ? b : JSON.stringify(b) }));
    let batch: typeof entries = [];
    let bytes = 0;
    for (const entry of entries) {
      const size = Buffer.byteLength(entry.MessageBody);
      if (size > SQS_BATCH_BYTES) throw new Error(`message ${entry.Id} is ${size} bytes; SQS takes at most ${SQS_BATCH_BYTES}`);
      if (batch.length === SQS_BATCH || bytes + size > SQS_BATCH_BYTES) {
        await this.sendBatch(batch);
        batch = [];
        bytes = 0;
      }
      batch.push(entry);
      bytes += size;
    }
    if (batch.length > 0) await this.sendBatch(batch);
  }

  private async sendBatch(entries: Array<{ Id: string; MessageBody: string }>): Promise<void> {
    let remaining = entries;
    for (let attempt = 1; ; attempt += 1) {
      const out = await this.client.send(new SendMessageBatchCommand({ QueueUrl: this.queueUrl, Entries: remaining }));
      const failed = out.Failed ?? [];
      if (failed.length === 0) return;
      const permanent = failed.find((f) => f.SenderFault);
      if (permanent) throw new Error(`SQS rejected message ${permanent.Id}: ${permanent.Code} ${permanent.Message ?? ''}`.trim());
      if (attempt >= this.maxAttempts) {
        throw new Error(`SQS failed ${failed.length} of ${remaining.length} messages after ${attempt} attempts: ${failed[0]?.Code}`);
      }
      const failedIds = new Set(failed.map((f) => f.Id));
      remaining = remaining.filter((e) => failedIds.has(e.Id));
      await this.sleep(Math.min(2000, 50 * 2 ** attempt) * (0.5 + Math.random() / 2));
    }
  }

  async depth(): Promise<QueueDepth> {
    const out = await this.client.send(
      new GetQueueAttributesCommand({
        QueueUrl: this.queueUrl,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'],
      }),
    );
    const attr = out.Attributes ?? {};
    return {
      visible: Number(attr.ApproximateNumberOfMessages ?? 0) + Number(attr.ApproximateNumberOfMessagesDelayed ?? 0),
      inFlight: Number(attr.ApproximateNumberOfMessagesNotVisible ?? 0),
    };
  }
}

/**
 * Runs a Lambda SQS handler against a local queue, as the Lambda event source mapping does in
 * AWS: receive a batch, invoke the handler with an SQS-shaped event, delete what succeeded, and
 * make failed records visible again after an exponential backoff with jitter. The queue moves a
 * message to its dead-letter queue once it has been received `maxReceives` times.
 */
import { createHash } from 'node:crypto';
import type { SQSEvent, SQSRecord, SQSBatchResponse } from 'aws-lambda';
import type { LocalQueue, ReceivedMessage } from '../shared/adapters/local-queue';

/**
 * Errors of failed records, handed from the SQS edge (its `onRecordFailure` option) to the worker
 * that releases those records, so a dead letter keeps the handler's own message.
 */
export class RecordErrors {
  private readonly byMessageId = new Map<string, string>();

  readonly onRecordFailure = (record: SQSRecord, error: Error): void => {
    this.byMessageId.set(record.messageId, error.message);
  };

  take(messageId: string): string | undefined {
    const error = this.byMessageId.get(messageId);
    this.byMessageId.delete(messageId);
    return error;
  }
}

export interface WorkerOptions {
  queue: LocalQueue;
  handler: (event: SQSEvent) => Promise<SQSBatchResponse>;
  /** Where the handler's SQS edge leaves each failed record's error. */
  recordErrors?: RecordErrors;
  batchSize: number;
  concurrency: number;
  /** Base of the retry backoff; attempt n waits about base * 2^(n-1), capped at maxBackoffMs. */
  backoffBaseMs?: number;
  maxBackoffMs?: number;
  onError?: (err: unknown) => void;
  onBatch?: (processed: number, failed: number) => void;
}

export function toSqsRecord(queueName: string, m: ReceivedMessage): SQSRecord {
  return {
    messageId: m.messageId,
    receiptHandle: m.receiptHandle,
    body: m.body,
    attributes: {
      ApproximateReceiveCount: String(m.receiveCount),
      SentTimestamp: String(m.sentAt),
      SenderId: 'local',
      ApproximateFirstReceiveTimestamp: String(m.firstReceivedAt),
    },
    messageAttributes: {},
    md5OfBody: createHash('md5').update(m.body).digest('hex'),
    eventSource: 'aws:sqs',
    eventSourceARN: `arn:aws:sqs:us-east-1:000000000000:${queueName}`,
    awsRegion: 'us-east-1',
  };
}

export function backoffMs(receiveCount: number, baseMs: number, maxMs: number, random = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, receiveCount - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

export class QueueWorker {
  private running = false;
  private loops: Promise<void>[] = [];

  constructor(private readonly options: WorkerOptions) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loops = Array.from({ length: this.options.concurrency }, () => this.loop());
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  private async loop(): Promise<void> {
    const { queue } = this.options;
    while (this.running) {
      let messages: ReceivedMessage[] = [];
      try {
        messages = await queue.receive(this.options.batchSize, 250);
        if (messages.length === 0 || !this.running) {
          // Stopping: messages received just now become visible again on the next start.
          continue;
        }
        await this.process(messages);
      } catch (err) {
        this.options.onError?.(err);
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  /** One batch: exactly what a Lambda invocation with ReportBatchItemFailures does. */
  async process(messages: ReceivedMessage[]): Promise<void> {
    const { queue } = this.options;
    const base = this.options.backoffBaseMs ?? 1000;
    const max = this.options.maxBackoffMs ?? 60_000;
    const event: SQSEvent = { Records: messages.map((m) => toSqsRecord(queue.name, m)) };
    let failedIds: Set<string>;
    let error: string | undefined;
    try {
      const response = await this.options.handler(event);
      failedIds = new Set((response?.batchItemFailures ?? []).map((f) => f.itemIdentifier));
    } catch (err) {
      // The whole invocation failed: every record is retried.
      failedIds = new Set(messages.map((m) => m.messageId));
      error = (err as Error).message;
      this.options.onError?.(err);
    }
    const succeeded = messages.filter((m) => !failedIds.has(m.messageId));
    await queue.delete(succeeded.map((m) => m.receiptHandle));
    for (const m of messages) {
      const recordError = this.options.recordErrors?.take(m.messageId);
      if (failedIds.has(m.messageId))
        await queue.release(m.receiptHandle, backoffMs(m.receiveCount, base, max), error ?? recordError ?? 'record failed (the handler reported no error)');
    }
    this.options.onBatch?.(succeeded.length, failedIds.size);
  }
}

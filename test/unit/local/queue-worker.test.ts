import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SQSEvent } from 'aws-lambda';
import { LocalQueue } from '../../../shared/adapters/local-queue';
import { backoffMs, QueueWorker } from '../../../local/queue-worker';

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

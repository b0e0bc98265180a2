/** The embedded stack's dead-letter queues: a LocalQueue per source queue, errors journalled with each message. */
import { parseBody, type DeadLetter, type DeadLetterQueue } from '../ports/dead-letters';
import type { LocalQueue } from './local-queue';

export class LocalDeadLetterQueue implements DeadLetterQueue {
  constructor(
    readonly name: string,
    private readonly dlq: LocalQueue,
    private readonly source: LocalQueue,
  ) {}

  async count(): Promise<number> {
    const d = await this.dlq.depth();
    return d.visible + d.inFlight;
  }

  async peek(limit: number): Promise<DeadLetter[]> {
    return this.dlq
      .peek()
      .slice(0, limit)
      .map((m) => ({
        messageId: m.messageId,
        body: parseBody(m.body),
        ...(m.lastError ? { error: m.lastError } : {}),
        sentAt: new Date(m.sentAt).toISOString(),
      }));
  }

  redrive(): Promise<number> {
    return this.dlq.redriveTo(this.source);
  }
}

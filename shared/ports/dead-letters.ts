/** Dead-letter queues: messages that failed every attempt, kept with their error for a human to look at and replay. */
export interface DeadLetter {
  messageId: string;
  /** The message body (parsed when it is JSON). */
  body: unknown;
  /** The last error the handler reported for it, when known. */
  error?: string;
  sentAt?: string;
}

export interface DeadLetterQueue {
  /** The queue it dead-letters for: 'ingest' or 'embed'. */
  readonly name: string;
  count(): Promise<number>;
  /** Up to `limit` messages, without consuming them. */
  peek(limit: number): Promise<DeadLetter[]>;
  /** Moves every message back to its source queue; returns how many (SQS: approximately). */
  redrive(): Promise<number>;
}

export function parseBody(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    return body;
  }
}

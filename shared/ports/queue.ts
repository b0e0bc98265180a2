/** A message queue (Amazon SQS, or the embedded stack's durable local queue). */
export interface QueueDepth {
  /** Messages waiting to be received. */
  visible: number;
  /** Messages received and not yet deleted. */
  inFlight: number;
}

export interface Queue {
  /** Sends every body (JSON-serialised); resolves only when all are durably accepted. */
  send(bodies: unknown[]): Promise<void>;
  depth(): Promise<QueueDepth>;
}

/**
 * The embedded stack's durable queue: the local stand-in for Amazon SQS.
 *
 * At-least-once delivery with a visibility timeout, a receive count per message, and dead-lettering
 * after `maxReceives` receives, like an SQS queue with a redrive policy. Every state change is
 * journalled (full message states, fsynced) before it takes effect, so a restart keeps every
 * message and its receive count. Messages in flight when the process died are delivered again
 * right away on the next start: the only consumer that held them is gone.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { Queue, QueueDepth } from '../ports/queue';
import { AppendLog } from '../storage/append-log';

interface MessageState {
  id: string;
  body: string;
  sentAt: number;
  visibleAt: number;
  receiveCount: number;
  firstReceivedAt?: number;
  inFlight: boolean;
  lastError?: string;
}

type JournalRecord = ({ t: 'm' } & MessageState) | { t: 'd'; id: string };

export interface ReceivedMessage {
  messageId: string;
  receiptHandle: string;
  body: string;
  receiveCount: number;
  sentAt: number;
  firstReceivedAt: number;
}

export interface LocalQueueOptions {
  /** How long a received message stays invisible before it is delivered again. */
  visibilityTimeoutMs: number;
  /** Receives after which a message moves to the dead-letter queue (SQS maxReceiveCount). */
  maxReceives: number;
  deadLetterQueue?: LocalQueue;
  now?: () => number;
}

const COMPACT_MIN_RECORDS = 2000;

export class LocalQueue implements Queue {
  private readonly messages = new Map<string, MessageState>();
  private readonly waiters = new Set<() => void>();
  private recordsSinceCompaction = 0;
  private compacting: Promise<void> | undefined;

  private constructor(
    readonly name: string,
    private readonly log: AppendLog,
    private readonly options: LocalQueueOptions,
    private readonly now: () => number,
  ) {}

  static async open(dir: string, name: string, options: LocalQueueOptions): Promise<LocalQueue> {
    const now = options.now ?? Date.now;
    const loaded = new Map<string, MessageState>();
    let records = 0;
    const log = await AppendLog.open(join(dir, `${name}.queue`), (payload) => {
      records += 1;
      const rec = JSON.parse(payload.toString('utf8')) as JournalRecord;
      if (rec.t === 'd') {
        loaded.delete(rec.id);
      } else {
        const { t: _t, ...state } = rec;
        loaded.delete(state.id);
        loaded.set(state.id, state);
      }
    });
    const queue = new LocalQueue(name, log, options, now);
    const startedAt = now();
    for (const state of loaded.values()) {
      if (state.inFlight) {
        state.inFlight = false;
        state.visibleAt = startedAt;
      }
      queue.messages.set(state.id, state);
    }
    queue.recordsSinceCompaction = records;
    return queue;
  }

  async send(bodies: unknown[]): Promise<void> {
    const sentAt = this.now();
    const states = bodies.map<MessageState>((b) => ({
      id: randomUUID(),
      body: typeof b === 'string' ? b : JSON.stringify(b),
      sentAt,
      visibleAt: sentAt,
      receiveCount: 0,
      inFlight: false,
    }));
    await this.sendStates(states);
  }

  private async sendStates(states: MessageState[]): Promise<void> {
    for (const s of states) this.messages.set(s.id, s);
    await this.journal(states.map((s) => ({ t: 'm', ...s })));
    this.notify();
  }

  /**
   * Up to `max` visible messages, made invisible for the visibility timeout. Waits up to `waitMs`
   * for one to arrive when none is visible (long polling).
   */
  async receive(max: number, waitMs = 0): Promise<ReceivedMessage[]> {
    let got = await this.receiveNow(max);
    if (got.length > 0 || waitMs <= 0) return got;
    await this.waitForMessage(waitMs);
    got = await this.receiveNow(max);
    return got;
  }

  private async receiveNow(max: number): Promise<ReceivedMessage[]> {
    const now = this.now();
    const picked: MessageState[] = [];
    const dead: MessageState[] = [];
    for (const state of this.messages.values()) {
      if (picked.length >= max) break;
      if (state.visibleAt > now) continue;
      if (state.receiveCount >= this.options.maxReceives && this.options.deadLetterQueue) {
        dead.push(state);
        continue;
      }
      state.receiveCount += 1;
      state.firstReceivedAt ??= now;
      state.visibleAt = now + this.options.visibilityTimeoutMs;
      state.inFlight = true;
      picked.push(state);
    }
    if (dead.length > 0) await this.moveToDeadLetter(dead);
    if (picked.length === 0) return [];
    await this.journal(picked.map((s) => ({ t: 'm', ...s })));
    return picked.map((s) => ({
      messageId: s.id,
      receiptHandle: receiptHandleFor(s),
      body: s.body,
      receiveCount: s.receiveCount,
      sentAt: s.sentAt,
      firstReceivedAt: s.firstReceivedAt ?? now,
    }));
  }

  private async moveToDeadLetter(states: MessageState[]): Promise<void> {
    const dlq = this.options.deadLetterQueue;
    if (!dlq) return;
    for (const s of states) this.messages.delete(s.id);
    // The DLQ gets its copy first: a crash between the two writes duplicates, never loses.
    await dlq.sendStates(states.map((s) => ({ ...s, visibleAt: this.now(), inFlight: false, receiveCount: 0 })));
    await this.journal(states.map((s) => ({ t: 'd', id: s.id })));
  }

  /** Deletes a received message. A stale receipt handle (the message was delivered again since) is ignored. */
  async delete(receiptHandles: string[]): Promise<void> {
    const records: JournalRecord[] = [];
    for (const handle of receiptHandles) {
      const state = this.stateFor(handle);
      if (!state) continue;
      this.messages.delete(state.id);
      records.push({ t: 'd', id: state.id });
    }
    await this.journal(records);
  }

  /** Makes a received message visible again after `delayMs` (a failed attempt), keeping its error. */
  async release(receiptHandle: string, delayMs: number, error?: string): Promise<void> {
    const state = this.stateFor(receiptHandle);
    if (!state) return;
    state.visibleAt = this.now() + Math.max(0, delayMs);
    state.inFlight = false;
    if (error !== undefined) state.lastError = error.slice(0, 2000);
    await this.journal([{ t: 'm', ...state }]);
    if (delayMs <= 0) this.notify();
  }

  async depth(): Promise<QueueDepth> {
    let visible = 0;
    let inFlight = 0;
    for (const s of this.messages.values()) {
      if (s.inFlight && s.visibleAt > this.now()) inFlight += 1;
      else visible += 1;
    }
    return { visible, inFlight };
  }

  /** Every message with its bookkeeping (for inspecting a dead-letter queue). */
  peek(): Array<{ messageId: string; body: string; sentAt: number; receiveCount: number; lastError?: string }> {
    return [...this.messages.values()].map((s) => ({
      messageId: s.id,
      body: s.body,
      sentAt: s.sentAt,
      receiveCount: s.receiveCount,
      lastError: s.lastError,
    }));
  }

  /** Moves every message to `target` (replaying a dead-letter queue); returns how many moved. */
  async redriveTo(target: LocalQueue): Promise<number> {
    const states = [...this.messages.values()];
    if (states.length === 0) return 0;
    await target.sendStates(states.map((s) => ({ ...s, id: randomUUID(), visibleAt: this.now(), inFlight: false, receiveCount: 0 })));
    for (const s of states) this.messages.delete(s.id);
    await this.journal(states.map((s) => ({ t: 'd', id: s.id })));
    return states.length;
  }

  async close(): Promise<void> {
    for (const wake of this.waiters) wake();
    await this.compacting;
    await this.log.close();
  }

  private stateFor(receiptHandle: string): MessageState | undefined {
    const dot = receiptHandle.lastIndexOf('.');
    const state = this.messages.get(receiptHandle.slice(0, dot));
    if (!state || receiptHandleFor(state) !== receiptHandle || !state.inFlight) return undefined;
    return state;
  }

  private async journal(records: JournalRecord[]): Promise<void> {
    if (records.length === 0) return;
    await this.log.append(records.map((r) => Buffer.from(JSON.stringify(r), 'utf8')));
    this.recordsSinceCompaction += records.length;
    if (!this.compacting && this.recordsSinceCompaction > Math.max(COMPACT_MIN_RECORDS, 4 * this.messages.size)) {
      this.compacting = this.compact().finally(() => {
        this.compacting = undefined;
      });
    }
  }

  private async compact(): Promise<void> {
    const ids = [...this.messages.keys()];
    const messages = this.messages;
    function* snapshot(): Generator<Buffer> {
      for (const id of ids) {
        const s = messages.get(id);
        if (s) yield Buffer.from(JSON.stringify({ t: 'm', ...s }), 'utf8');
      }
    }
    this.recordsSinceCompaction = 0;
    await this.log.rewrite(snapshot());
    this.recordsSinceCompaction = this.messages.size;
  }

  private notify(): void {
    for (const wake of this.waiters) wake();
    this.waiters.clear();
  }

  private waitForMessage(waitMs: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, waitMs);
      this.waiters.add(done);
    });
  }
}

function receiptHandleFor(state: MessageState): string {
  return `${state.id}.${state.receiveCount}`;
}

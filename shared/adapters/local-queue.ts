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
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import type { Queue, QueueDepth } from '../ports/queue';
import { AppendLog, frameLength, readFrameSync } from '../storage/append-log';

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
  /** Messages held in memory; the rest of a backlog is parked on disk (tests lower it). */
  memoryMessages?: number;
}

const COMPACT_MIN_RECORDS = 2000;
/** Messages held in memory before the backlog is parked on disk: far more than are ever in flight at once. */
export const MEMORY_MESSAGES = 4096;

/** Journal offsets of parked messages in arrival order: a queue of numbers, 8 bytes each. */
class Offsets {
  private items: number[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(offset: number): void {
    this.items.push(offset);
  }

  shift(): number | undefined {
    if (this.head >= this.items.length) return undefined;
    const o = this.items[this.head++]!;
    if (this.head >= 4096 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return o;
  }

  values(): number[] {
    return this.items.slice(this.head);
  }

  /** Replaces the last `offsets.length` entries (those still parked of a list taken earlier). */
  replaceLast(offsets: number[]): void {
    const start = this.items.length - offsets.length;
    if (start < this.head) throw new Error('more parked messages to relocate than are parked');
    for (let i = 0; i < offsets.length; i += 1) this.items[start + i] = offsets[i]!;
  }
}

export class LocalQueue implements Queue {
  private readonly messages = new Map<string, MessageState>();
  /** The backlog beyond `memoryMessages`: each message's newest record, never received since it was parked. */
  private readonly parked = new Offsets();
  private readonly waiters = new Set<() => void>();
  private recordsSinceCompaction = 0;
  private compacting: Promise<void> | undefined;
  private readFd: number;
  private readonly memoryMessages: number;

  private constructor(
    readonly name: string,
    private readonly log: AppendLog,
    private readonly options: LocalQueueOptions,
    private readonly now: () => number,
  ) {
    this.readFd = openSync(log.path, 'r');
    this.memoryMessages = Math.max(1, options.memoryMessages ?? MEMORY_MESSAGES);
  }

  static async open(dir: string, name: string, options: LocalQueueOptions): Promise<LocalQueue> {
    const now = options.now ?? Date.now;
    // Each live message's newest record (its offset only: a long backlog is not read into memory).
    const newest = new Map<string, number>();
    let records = 0;
    const log = await AppendLog.open(join(dir, `${name}.queue`), (payload, offset) => {
      records += 1;
      const rec = JSON.parse(payload.toString('utf8')) as JournalRecord;
      newest.delete(rec.id);
      if (rec.t !== 'd') newest.set(rec.id, offset);
    });
    const queue = new LocalQueue(name, log, options, now);
    for (const offset of newest.values()) queue.parked.push(offset);
    queue.refill(queue.memoryMessages);
    queue.recordsSinceCompaction = records;
    return queue;
  }

  /** The state in a record read back from the journal: a parked message, or one from before a restart, is not in flight. */
  private stateAt(offset: number): MessageState {
    const { t: _t, ...state } = JSON.parse(readFrameSync(this.readFd, offset).toString('utf8')) as { t: 'm' } & MessageState;
    if (state.inFlight) {
      state.inFlight = false;
      state.visibleAt = this.now();
    }
    return state;
  }

  /** Moves parked messages into memory, oldest first, until `upTo` messages are there. */
  private refill(upTo: number): void {
    while (this.messages.size < upTo && this.parked.length > 0) {
      const state = this.stateAt(this.parked.shift()!);
      this.messages.set(state.id, state);
    }
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
    const offsets = await this.journal(states.map((s) => ({ t: 'm', ...s })));
    // Past the memory bound (or behind messages parked already, to keep arrival order), park the
    // new messages that nobody has received yet: their record just written is their state.
    states.forEach((s, i) => {
      if (this.parked.length === 0 && this.messages.size <= this.memoryMessages) return;
      if (this.messages.get(s.id) !== s || s.receiveCount > 0 || s.inFlight) return;
      this.messages.delete(s.id);
      this.parked.push(offsets[i]!);
    });
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
    this.refill(this.memoryMessages);
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
    if (picked.length === 0) {
      // Every message in memory is in flight or waiting out a delay: bring in parked ones beyond the bound.
      if (this.parked.length > 0 && dead.length === 0) {
        this.refill(this.messages.size + max);
        return this.receiveNow(max);
      }
      return [];
    }
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
    return { visible: visible + this.parked.length, inFlight };
  }

  /** Every message with its bookkeeping (for inspecting a dead-letter queue). */
  peek(): Array<{ messageId: string; body: string; sentAt: number; receiveCount: number; lastError?: string }> {
    return this.all().map((s) => ({
      messageId: s.id,
      body: s.body,
      sentAt: s.sentAt,
      receiveCount: s.receiveCount,
      lastError: s.lastError,
    }));
  }

  /** Moves every message to `target` (replaying a dead-letter queue); returns how many moved. */
  async redriveTo(target: LocalQueue): Promise<number> {
    this.refill(Infinity);
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
    closeSync(this.readFd);
  }

  /** Every message: those in memory, then the parked ones read back (without moving them). */
  private all(): MessageState[] {
    return [...this.messages.values(), ...this.parked.values().map((o) => this.stateAt(o))];
  }

  /** Messages in the queue, in memory or parked. */
  private get size(): number {
    return this.messages.size + this.parked.length;
  }

  private stateFor(receiptHandle: string): MessageState | undefined {
    const dot = receiptHandle.lastIndexOf('.');
    const state = this.messages.get(receiptHandle.slice(0, dot));
    if (!state || receiptHandleFor(state) !== receiptHandle || !state.inFlight) return undefined;
    return state;
  }

  /** Journals `records`; the offset of each one's frame. */
  private async journal(records: JournalRecord[]): Promise<number[]> {
    if (records.length === 0) return [];
    const offsets = await this.log.append(records.map((r) => Buffer.from(JSON.stringify(r), 'utf8')));
    this.recordsSinceCompaction += records.length;
    if (!this.compacting && this.recordsSinceCompaction > Math.max(COMPACT_MIN_RECORDS, 4 * this.size)) {
      this.compacting = this.compact().finally(() => {
        this.compacting = undefined;
      });
    }
    return offsets;
  }

  private async compact(): Promise<void> {
    const self = this;
    let stillParked: number[] = [];
    let relocated: number[] = [];
    let written = 0;
    // Taken when the rewrite starts writing: appends are held from then on, so nothing is parked
    // meanwhile (parking follows an append); receives may still take parked messages from the front.
    function* snapshot(): Generator<Buffer> {
      const ids = [...self.messages.keys()];
      stillParked = self.parked.values();
      relocated = new Array<number>(stillParked.length);
      const emit = (payload: Buffer) => {
        written += frameLength(payload.length);
        return payload;
      };
      for (const id of ids) {
        const s = self.messages.get(id);
        if (s) yield emit(Buffer.from(JSON.stringify({ t: 'm', ...s }), 'utf8'));
      }
      for (let i = 0; i < stillParked.length; i += 1) {
        relocated[i] = written;
        yield emit(readFrameSync(self.readFd, stillParked[i]!));
      }
    }
    this.recordsSinceCompaction = 0;
    await this.log.rewrite(snapshot());
    // The parked messages not taken meanwhile are the last ones of the list: their records moved.
    if (this.parked.length > stillParked.length) throw new Error(`queue ${this.name}: messages were parked during a compaction`);
    this.parked.replaceLast(relocated.slice(stillParked.length - this.parked.length));
    closeSync(this.readFd);
    this.readFd = openSync(this.log.path, 'r');
    this.recordsSinceCompaction = this.size;
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

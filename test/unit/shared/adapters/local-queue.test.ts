import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalQueue } from '../../../../shared/adapters/local-queue';

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

const opened: LocalQueue[] = [];
afterEach(async () => {
  for (const q of opened.splice(0)) await q.close();
});

async function openPair(dir: string, now: () => number, maxReceives = 3) {
  const dlq = await LocalQueue.open(dir, 'work-dlq', { visibilityTimeoutMs: 1000, maxReceives: 100, now });
  const queue = await LocalQueue.open(dir, 'work', { visibilityTimeoutMs: 1000, maxReceives, deadLetterQueue: dlq, now });
  opened.push(queue, dlq);
  return { queue, dlq };
}

describe('LocalQueue', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'queue-'));
  });

  describe('receive', () => {
    it('hides a received message until its visibility timeout expires, then delivers it again', async () => {
      const c = clock();
      const { queue } = await openPair(dir, c.now);
      await queue.send([{ n: 1 }]);
      const [first] = await queue.receive(10);
      expect(first).toMatchObject({ body: '{"n":1}', receiveCount: 1 });
      expect(await queue.receive(10)).toHaveLength(0);
      c.advance(1001);
      const [again] = await queue.receive(10);
      expect(again).toMatchObject({ messageId: first!.messageId, receiveCount: 2 });
    });

    it('returns at most the requested number of messages', async () => {
      const { queue } = await openPair(dir, clock().now);
      await queue.send([1, 2, 3, 4, 5]);
      expect(await queue.receive(2)).toHaveLength(2);
      expect(await queue.receive(10)).toHaveLength(3);
    });

    it('long-polls: a send wakes a waiting receive', async () => {
      const { queue } = await openPair(dir, Date.now);
      const waiting = queue.receive(1, 5000);
      setTimeout(() => void queue.send(['late']), 20);
      const started = Date.now();
      const got = await waiting;
      expect(got.map((m) => m.body)).toEqual(['late']);
      expect(Date.now() - started).toBeLessThan(4000);
    });

    it('moves a message to the dead-letter queue after maxReceives receives', async () => {
      const c = clock();
      const { queue, dlq } = await openPair(dir, c.now, 2);
      await queue.send(['poison']);
      for (let i = 0; i < 2; i += 1) {
        const [m] = await queue.receive(1);
        await queue.release(m!.receiptHandle, 0, `attempt ${i + 1} failed`);
      }
      expect(await queue.receive(1)).toHaveLength(0);
      expect(await queue.depth()).toEqual({ visible: 0, inFlight: 0 });
      expect(dlq.peek()).toEqual([expect.objectContaining({ body: 'poison', lastError: 'attempt 2 failed' })]);
    });
  });

  describe('delete', () => {
    it('removes a received message; a stale receipt handle from an earlier delivery is ignored', async () => {
      const c = clock();
      const { queue } = await openPair(dir, c.now);
      await queue.send(['x']);
      const [first] = await queue.receive(1);
      c.advance(1001);
      const [second] = await queue.receive(1);
      await queue.delete([first!.receiptHandle]);
      expect(await queue.depth()).toEqual({ visible: 0, inFlight: 1 });
      await queue.delete([second!.receiptHandle]);
      expect(await queue.depth()).toEqual({ visible: 0, inFlight: 0 });
    });
  });

  describe('release', () => {
    it('makes a failed message visible again after the given delay', async () => {
      const c = clock();
      const { queue } = await openPair(dir, c.now);
      await queue.send(['x']);
      const [m] = await queue.receive(1);
      await queue.release(m!.receiptHandle, 500, 'boom');
      expect(await queue.receive(1)).toHaveLength(0);
      c.advance(500);
      expect((await queue.receive(1))[0]).toMatchObject({ body: 'x', receiveCount: 2 });
    });
  });

  describe('durability', () => {
    it('keeps messages and receive counts across a restart and redelivers in-flight messages at once', async () => {
      const c = clock();
      const { queue, dlq } = await openPair(dir, c.now);
      await queue.send(['a', 'b', 'c']);
      const got = await queue.receive(2);
      await queue.delete([got[0]!.receiptHandle]);
      // No close: as after kill -9.
      void dlq;
      const reopened = await openPair(dir, c.now);
      const again = await reopened.queue.receive(10);
      expect(again.map((m) => m.body).sort()).toEqual(['b', 'c']);
      expect(again.find((m) => m.body === 'b')!.receiveCount).toBe(2);
      expect(again.find((m) => m.body === 'c')!.receiveCount).toBe(1);
    });

    it('compacts its journal without losing state', async () => {
      const c = clock();
      const { queue } = await openPair(dir, c.now, 100);
      await queue.send(Array.from({ length: 50 }, (_, i) => `keep-${i}`));
      for (let round = 0; round < 60; round += 1) {
        await queue.send(Array.from({ length: 20 }, (_, i) => `tmp-${round}-${i}`));
        const got = await queue.receive(100);
        await queue.delete(got.filter((m) => m.body.startsWith('tmp')).map((m) => m.receiptHandle));
        for (const m of got.filter((m) => m.body.startsWith('keep'))) await queue.release(m.receiptHandle, 0);
      }
      const reopened = await openPair(dir, c.now, 100);
      const bodies = (await reopened.queue.receive(1000)).map((m) => m.body).sort();
      expect(bodies).toEqual(Array.from({ length: 50 }, (_, i) => `keep-${i}`).sort());
    });
  });

  describe('a backlog beyond memory', () => {
    const opts = (now: () => number, memoryMessages: number) => ({ visibilityTimeoutMs: 1000, maxReceives: 5, now, memoryMessages });
    const inMemory = (q: LocalQueue) => (q as unknown as { messages: Map<string, unknown> }).messages.size;

    it('parks messages past the bound on disk and delivers every one, oldest first, across a compaction and a restart', async () => {
      const c = clock();
      const queue = await LocalQueue.open(dir, 'big', opts(c.now, 16));
      opened.push(queue);
      // 3,000 messages (past the compaction threshold of 2,000 records) sent while nothing is received.
      for (let i = 0; i < 3000; i += 100) await queue.send(Array.from({ length: 100 }, (_, j) => `m-${i + j}`));
      expect(inMemory(queue)).toBeLessThanOrEqual(16);
      expect(await queue.depth()).toEqual({ visible: 3000, inFlight: 0 });
      const seen: string[] = [];
      // Half of them received and deleted; meanwhile 200 more records trigger a compaction.
      while (seen.length < 1500) {
        const got = await queue.receive(10);
        seen.push(...got.map((m) => m.body));
        await queue.delete(got.map((m) => m.receiptHandle));
        expect(inMemory(queue)).toBeLessThanOrEqual(16 + 10);
      }
      await (queue as unknown as { compacting?: Promise<void> }).compacting;
      // Arrival order (a message sent later is never delivered before one sent earlier).
      expect(seen).toEqual(Array.from({ length: 1500 }, (_, i) => `m-${i}`));
      // Without a close, as after kill -9: the rest comes back, parked again beyond the bound.
      const reopened = await LocalQueue.open(dir, 'big', opts(c.now, 16));
      opened.push(reopened);
      expect(inMemory(reopened)).toBe(16);
      expect(await reopened.depth()).toEqual({ visible: 1500, inFlight: 0 });
      const rest: string[] = [];
      for (;;) {
        const got = await reopened.receive(10);
        if (got.length === 0) break;
        rest.push(...got.map((m) => m.body));
        await reopened.delete(got.map((m) => m.receiptHandle));
      }
      expect(rest).toEqual(Array.from({ length: 1500 }, (_, i) => `m-${1500 + i}`));
    });

    it('compacts while messages are parked and receives go on, losing none', async () => {
      const c = clock();
      const queue = await LocalQueue.open(dir, 'churn', opts(c.now, 8));
      opened.push(queue);
      await queue.send(Array.from({ length: 500 }, (_, i) => `keep-${i}`));
      const taken: string[] = [];
      // Receive-and-release churn writes records until compactions run; receives go on during them.
      for (let round = 0; round < 400; round += 1) {
        const got = await queue.receive(4);
        for (const m of got) {
          if (round % 2 === 0) {
            await queue.delete([m.receiptHandle]);
            taken.push(m.body);
          } else {
            await queue.release(m.receiptHandle, 0);
          }
        }
      }
      await (queue as unknown as { compacting?: Promise<void> }).compacting;
      const all: string[] = [...taken];
      const reopened = await LocalQueue.open(dir, 'churn', opts(c.now, 8));
      opened.push(reopened);
      for (;;) {
        const got = await reopened.receive(50);
        if (got.length === 0) break;
        all.push(...got.map((m) => m.body));
        await reopened.delete(got.map((m) => m.receiptHandle));
      }
      expect(all.sort()).toEqual(Array.from({ length: 500 }, (_, i) => `keep-${i}`).sort());
    });

    it('shows parked messages to peek and moves them on a redrive', async () => {
      const c = clock();
      const { queue, dlq } = await openPair(dir, c.now, 1);
      const small = await LocalQueue.open(dir, 'small-dlq', opts(c.now, 4));
      opened.push(small);
      await small.send(Array.from({ length: 20 }, (_, i) => `dead-${i}`));
      expect(inMemory(small)).toBeLessThanOrEqual(4);
      expect(small.peek().map((m) => m.body)).toEqual(Array.from({ length: 20 }, (_, i) => `dead-${i}`));
      expect(await small.redriveTo(queue)).toBe(20);
      expect(await small.depth()).toEqual({ visible: 0, inFlight: 0 });
      expect((await queue.receive(100)).map((m) => m.body).sort()).toEqual(Array.from({ length: 20 }, (_, i) => `dead-${i}`).sort());
      void dlq;
    });

    it('holds a bounded number of messages in memory however long the backlog', async () => {
      const gc = (globalThis as { gc?: () => void }).gc;
      if (!gc) throw new Error('run with NODE_OPTIONS=--expose-gc (npm run test:unit does)');
      const queue = await LocalQueue.open(dir, 'mem', opts(Date.now, 256));
      opened.push(queue);
      const body = (i: number) => ({ key: `fm/${String(i).padStart(6, '0')}.png`, imageId: i.toString(16).padStart(32, '0'), sequencer: '0123456789ABCDEF' });
      await queue.send(Array.from({ length: 1000 }, (_, i) => body(i)));
      gc();
      const before = process.memoryUsage().heapUsed;
      const n = 20_000;
      for (let i = 0; i < n; i += 500) await queue.send(Array.from({ length: 500 }, (_, j) => body(1000 + i + j)));
      await (queue as unknown as { compacting?: Promise<void> }).compacting;
      gc();
      const perMessage = (process.memoryUsage().heapUsed - before) / n;
      // Measured: 315 bytes a message with every message in memory, under 10 with the backlog parked.
      expect(perMessage).toBeLessThan(40);
      expect(await queue.depth()).toEqual({ visible: 1000 + n, inFlight: 0 });
    });
  });

  describe('redriveTo', () => {
    it('moves every dead-lettered message back to the source queue', async () => {
      const c = clock();
      const { queue, dlq } = await openPair(dir, c.now, 1);
      await queue.send(['p']);
      const [m] = await queue.receive(1);
      await queue.release(m!.receiptHandle, 0, 'fail');
      expect(await queue.receive(1)).toHaveLength(0);
      expect(await dlq.redriveTo(queue)).toBe(1);
      expect((await queue.receive(1)).map((x) => x.body)).toEqual(['p']);
    });
  });
});

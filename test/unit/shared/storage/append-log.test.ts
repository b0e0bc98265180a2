import { execFileSync } from 'node:child_process';
import { appendFileSync, closeSync, mkdtempSync, openSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppendLog, frame, frameLength, readFrameSync } from '../../../../shared/storage/append-log';
import { logWriterThread } from '../../../../shared/storage/log-writer';

const tmp = () => join(mkdtempSync(join(tmpdir(), 'applog-')), 'log');
const replayAll = async (path: string) => {
  const out: string[] = [];
  const log = await AppendLog.open(path, (p) => out.push(p.toString()));
  return { log, out };
};
/** The records a reopened log replays; the log is closed again (no file handle left open). */
const replayedRecords = async (path: string) => {
  const { log, out } = await replayAll(path);
  await log.close();
  return out;
};

describe('AppendLog', () => {
  describe('append', () => {
    it('replays every appended record in order after reopening', async () => {
      const path = tmp();
      const { log } = await replayAll(path);
      await Promise.all([log.append([Buffer.from('a'), Buffer.from('b')]), log.append([Buffer.from('c')])]);
      await log.append([Buffer.from('d')]);
      await log.close();
      const { log: again, out } = await replayAll(path);
      expect(out).toEqual(['a', 'b', 'c', 'd']);
      await again.close();
    });

    it('reports each frame offset on append and on replay, and one positioned read gets the record back', async () => {
      const path = tmp();
      const { log } = await replayAll(path);
      const big = Buffer.alloc(3000, 'z'); // longer than the first read's guess
      const [a, b] = await Promise.all([log.append([Buffer.from('first'), big]), log.append([Buffer.from('third')])]);
      expect(a).toEqual([0, frameLength(5)]);
      expect(b).toEqual([frameLength(5) + frameLength(3000)]);
      await log.rewrite([Buffer.from('kept'), Buffer.from('also kept')]);
      expect(await log.append([Buffer.from('after')])).toEqual([frameLength(4) + frameLength(9)]);
      await log.close();
      const seen: Array<[string, number]> = [];
      const again = await AppendLog.open(path, (p, offset) => seen.push([p.toString(), offset]));
      await again.close();
      expect(seen).toEqual([
        ['kept', 0],
        ['also kept', frameLength(4)],
        ['after', frameLength(4) + frameLength(9)],
      ]);
      const fd = openSync(path, 'r');
      try {
        expect(readFrameSync(fd, frameLength(4)).toString()).toBe('also kept');
        expect(() => readFrameSync(fd, 3)).toThrow(/no record|cut short|checksum/);
      } finally {
        closeSync(fd);
      }
      const long = tmp();
      const { log: third } = await replayAll(long);
      const [at] = await third.append([big]);
      await third.close();
      const fd2 = openSync(long, 'r');
      try {
        expect(readFrameSync(fd2, at!).equals(big)).toBe(true);
      } finally {
        closeSync(fd2);
      }
    });

    it('rejects appends after close', async () => {
      const { log } = await replayAll(tmp());
      await log.close();
      await expect(log.append([Buffer.from('x')])).rejects.toThrow(/closed/);
    });

    it("is written and synced on the logs' own thread: an append completes while every libuv threadpool thread is blocked", async () => {
      const { log } = await replayAll(tmp());
      await log.append([Buffer.from('before')]); // the writer thread is up
      // An asynchronous open of a FIFO that has no writer holds a threadpool thread until a writer opens it.
      const fifo = join(mkdtempSync(join(tmpdir(), 'applog-fifo-')), 'fifo');
      execFileSync('mkfifo', [fifo]);
      const blockers = Array.from({ length: Number(process.env.UV_THREADPOOL_SIZE ?? 4) }, () => open(fifo, 'r'));
      let pool = 'busy';
      const probe = stat(fifo).then(() => {
        pool = 'a thread was free';
      });
      try {
        const appended = log.append([Buffer.from('while the pool is busy')]);
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise((r) => (timer = setTimeout(() => r('timeout'), 5000)));
        const first = await Promise.race([appended.then(() => 'append'), timeout]);
        clearTimeout(timer);
        expect(pool).toBe('busy'); // every thread was held while the append went through
        expect(first).toBe('append');
      } finally {
        const writer = openSync(fifo, 'w'); // releases every blocked open
        for (const h of await Promise.all(blockers)) await h.close();
        closeSync(writer);
        await probe;
        await log.close();
      }
    });

    it("makes each batch durable with an fdatasync on the log's file, from the writer thread (strace)", () => {
      const path = tmp();
      const trace = `${path}.strace`;
      const script = `
        const { AppendLog } = require('./shared/storage/append-log');
        (async () => {
          const log = await AppendLog.open(${JSON.stringify(path)}, () => undefined);
          for (const r of ['one', 'two', 'three']) await log.append([Buffer.from(r)]);
          await log.close();
        })();`;
      execFileSync('strace', ['-f', '-qq', '-e', 'trace=openat,fdatasync', '-o', trace, process.execPath, '--import', 'tsx', '-e', script], {
        cwd: join(__dirname, '../../../..'),
      });
      const lines = readFileSync(trace, 'utf8').split('\n');
      const opened = lines.find((l) => l.includes(`"${path}"`) && /= \d+$/.test(l));
      expect(opened).toBeDefined();
      const fd = opened!.match(/= (\d+)$/)![1];
      // The first call traced is the dynamic loader's, on the main thread (the log itself is opened on a threadpool thread).
      const mainPid = lines[0]!.split(' ')[0];
      const syncs = lines.filter((l) => l.includes(`fdatasync(${fd})`));
      expect(syncs).toHaveLength(3); // one per sequential batch: none skipped
      for (const l of syncs) expect(l.split(' ')[0]).not.toBe(mainPid); // never on the main thread
    });

    it("rejects a write with the writer thread's error, and the logs go on", async () => {
      const path = tmp();
      const { log } = await replayAll(path);
      await log.append([Buffer.from('a')]);
      const readOnly = openSync(path, 'r');
      try {
        await expect(logWriterThread.appendAndSync(readOnly, Buffer.from('lost'))).rejects.toMatchObject({ code: 'EBADF' });
      } finally {
        closeSync(readOnly);
      }
      await log.append([Buffer.from('b')]);
      await log.close();
      expect(await replayedRecords(path)).toEqual(['a', 'b']);
    });
  });

  describe('open', () => {
    it('drops a torn tail left by a crash mid-write and keeps appending on a boundary', async () => {
      const path = tmp();
      const { log } = await replayAll(path);
      await log.append([Buffer.from('one'), Buffer.from('two')]);
      await log.close();
      const whole = frame(Buffer.from('three'));
      appendFileSync(path, whole.subarray(0, whole.length - 2));
      const { log: reopened, out } = await replayAll(path);
      expect(out).toEqual(['one', 'two']);
      await reopened.append([Buffer.from('four')]);
      await reopened.close();
      expect(await replayedRecords(path)).toEqual(['one', 'two', 'four']);
    });

    it('stops at a record whose checksum does not match', async () => {
      const path = tmp();
      writeFileSync(path, Buffer.concat([frame(Buffer.from('good')), frame(Buffer.from('bad!'))]));
      const bytes = readFileSync(path);
      bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0xff;
      writeFileSync(path, bytes);
      const { log, out } = await replayAll(path);
      expect(out).toEqual(['good']);
      expect(statSync(path).size).toBe(frame(Buffer.from('good')).length);
      await log.close();
    });
  });

  describe('close', () => {
    it('waits for a rewrite in progress and leaves no file handle open', async () => {
      const path = tmp();
      const { log } = await replayAll(path);
      await log.append([Buffer.from('a')]);
      const rewriting = log.rewrite([Buffer.from('snapshot')]);
      await log.close();
      await rewriting;
      await expect(log.rewrite([Buffer.from('again')])).rejects.toThrow(/closed/);
      expect(await replayedRecords(path)).toEqual(['snapshot']);
    });
  });

  describe('rewrite', () => {
    it('replaces the contents atomically and keeps appends issued during the rewrite', async () => {
      const path = tmp();
      const { log } = await replayAll(path);
      await log.append(['a', 'b', 'c'].map((s) => Buffer.from(s)));
      const rewriting = log.rewrite([Buffer.from('snapshot')]);
      const during = log.append([Buffer.from('late')]);
      await Promise.all([rewriting, during]);
      await log.close();
      expect(await replayedRecords(path)).toEqual(['snapshot', 'late']);
    });
  });

  describe('compactBefore', () => {
    it('copies the live records while appends go on, then the frames appended since, at the offsets it reports', async () => {
      const path = tmp();
      const { log } = await replayAll(path);
      const [dead, live] = await log.append([Buffer.from('dead'), Buffer.from('live')]);
      const from = log.size;
      // More than one write chunk (8 MB), so the copy awaits its writes; an append is issued from inside it.
      let during: Promise<number[]> | undefined;
      const reader = openSync(path, 'r');
      function* payloads(): Iterable<Buffer> {
        yield readFrameSync(reader, live!);
        for (let i = 0; i < 9; i += 1) yield Buffer.alloc(1024 * 1024, i);
        during = log.append([Buffer.from('appended during the copy')]);
        yield Buffer.from('last copied');
      }
      const compaction = log.compactBefore(from, payloads());
      for (let i = 0; i < 500 && !during; i += 1) await new Promise((r) => setTimeout(r, 10));
      expect(during).toBeDefined();
      // The append completes first: a compaction that held appends back from the start would finish first.
      const first = await Promise.race([during!.then(() => 'append'), compaction.then(() => 'compaction')]);
      expect(first).toBe('append');
      const [at] = await during!;
      expect(at).toBeGreaterThanOrEqual(from); // in the old file, after where the copy starts
      const tailStart = await compaction;
      closeSync(reader);
      expect(tailStart).toBe(frameLength(4) + 9 * frameLength(1024 * 1024) + frameLength(11));
      // The appended frame moved to the tail, and appends continue after it.
      const fd = openSync(path, 'r');
      expect(readFrameSync(fd, at! - from + tailStart).toString()).toBe('appended during the copy');
      closeSync(fd);
      expect(await log.append([Buffer.from('after')])).toEqual([tailStart + frameLength(24)]);
      await log.close();
      const records = await replayedRecords(path);
      expect([records[0], records[10], ...records.slice(11)]).toEqual(['live', 'last copied', 'appended during the copy', 'after']);
      expect(records).toHaveLength(13);
      expect(dead).toBe(0);
    });
  });
});

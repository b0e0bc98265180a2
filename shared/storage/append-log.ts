/**
 * A durable append-only log of opaque records, the storage under the embedded stack's queue and
 * vector index.
 *
 * Frame: u32le payload length, u32le CRC-32 of the payload, payload. Appends are group-committed:
 * every record passed to `append` is on disk (fdatasync) when its promise resolves. On open, the
 * log is replayed up to the first torn or corrupt frame (a crash mid-write) and truncated there.
 * `rewrite` replaces the whole log atomically (write a temporary file, fsync, rename) for compaction;
 * `compactBefore` does the same for the log's first part while appends go on, then adds what they wrote.
 * Each record's frame offset in the file is reported (on replay and on append), so a reader can
 * come back to one record with a single positioned read.
 */
import { closeSync, fsyncSync, openSync, readSync } from 'node:fs';
import { open, rename, mkdir, rm, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { crc32 } from 'node:zlib';
import { logWriterThread } from './log-writer';

const HEADER = 8;
const MAX_RECORD = 256 * 1024 * 1024;
/** Bytes per read while replaying, and per write while rewriting. */
const IO_CHUNK = 8 * 1024 * 1024;
/**
 * Bytes per write while compacting with appends going on: the records of a chunk are read and framed
 * synchronously, so a smaller chunk keeps the event loop (and the appends) waiting less.
 */
const COMPACT_CHUNK = 1024 * 1024;
/** While compacting, fsync the copy every this many bytes: one large flush at the end would make the appends' own fsyncs wait behind it. */
const COMPACT_SYNC = 32 * 1024 * 1024;

interface Pending {
  frames: Buffer[];
  resolve: (offsets: number[]) => void;
  reject: (err: unknown) => void;
}

/** Bytes a payload of `length` bytes takes in the log. */
export const frameLength = (length: number) => HEADER + length;

export function frame(payload: Buffer): Buffer {
  const header = Buffer.allocUnsafe(HEADER);
  header.writeUInt32LE(payload.length, 0);
  header.writeUInt32LE(crc32(payload), 4);
  return Buffer.concat([header, payload]);
}

export class AppendLog {
  private pending: Pending[] = [];
  private flushing: Promise<void> | undefined;
  private closed = false;
  /** The rewrite in progress, if any: close() waits for it, so the handle it reopens is closed too. */
  private rewriting: Promise<void> | undefined;
  /** A compactBefore in progress (appends still go on until its last step). */
  private compacting = false;
  /** The end of the last batch whose appends have resolved: every frame before it has been handed to its caller. */
  private settledEnd: number;

  private constructor(
    readonly path: string,
    private handle: FileHandle,
    /** Bytes of intact frames in the file: where the next frame goes. */
    private end: number,
  ) {
    this.settledEnd = end;
  }

  /** Opens (creating if needed) and replays the log; `onRecord` sees every intact record in order, with its frame's offset. */
  static async open(path: string, onRecord: (payload: Buffer, offset: number) => void): Promise<AppendLog> {
    await mkdir(dirname(path), { recursive: true });
    const handle = await open(path, 'a+');
    try {
      const validBytes = await replay(handle, onRecord);
      const { size } = await handle.stat();
      if (size > validBytes) {
        // A torn tail from a crash mid-append: drop it so new frames start on a boundary.
        await handle.truncate(validBytes);
        await handle.datasync();
      }
      return new AppendLog(path, handle, validBytes);
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  /** Bytes of intact frames: the offset the next frame gets. */
  get size(): number {
    return this.end;
  }

  /**
   * Every frame before this offset belongs to an append that has resolved, so the code after its
   * caller's `await` runs before the next macrotask (e.g. a setImmediate callback). A reader that
   * mirrors the log in memory can say "everything before here is applied" from such a callback.
   */
  get settled(): number {
    return this.settledEnd;
  }

  /** Resolves, once every payload is durable, with the offset of each one's frame. */
  append(payloads: Buffer[]): Promise<number[]> {
    if (this.closed) return Promise.reject(new Error(`append-log ${this.path} is closed`));
    if (payloads.length === 0) return Promise.resolve([]);
    for (const p of payloads) {
      if (p.length > MAX_RECORD) return Promise.reject(new Error(`record of ${p.length} bytes exceeds ${MAX_RECORD}`));
    }
    return new Promise<number[]>((resolve, reject) => {
      this.pending.push({ frames: payloads.map(frame), resolve, reject });
      this.kick();
    });
  }

  private kick(): void {
    if (!this.flushing && !this.rewriting && this.pending.length > 0) this.flushing = this.flushLoop();
  }

  private async flushLoop(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const batch = this.pending;
        this.pending = [];
        try {
          const buf = Buffer.concat(batch.flatMap((p) => p.frames));
          const at = this.end;
          // On the logs' own thread: libuv's threadpool is where sharp and onnxruntime queue their work.
          await logWriterThread.appendAndSync(this.handle.fd, buf);
          this.end += buf.length;
          this.settledEnd = this.end;
          let offset = at;
          for (const p of batch) {
            p.resolve(
              p.frames.map((f) => {
                const o = offset;
                offset += f.length;
                return o;
              }),
            );
          }
        } catch (err) {
          for (const p of batch) p.reject(err);
        }
      }
    } finally {
      this.flushing = undefined;
    }
  }

  /** Waits until every append issued so far is durable. */
  async drain(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  /**
   * Atomically replaces the log's contents with `payloads` (compaction). Appends issued while the
   * rewrite runs are held back and written to the new log afterwards, so replaying them on top of
   * the snapshot must be harmless: callers log full states, not deltas. The new log's frames are
   * at the offsets `frameLength` gives, in the order of `payloads`, from 0.
   */
  async rewrite(payloads: Iterable<Buffer>): Promise<void> {
    if (this.closed) throw new Error(`append-log ${this.path} is closed`);
    if (this.rewriting) throw new Error(`append-log ${this.path} is already being rewritten`);
    this.rewriting = (async () => {
      await this.drain();
      await this.writeReplacement(payloads);
    })();
    try {
      await this.rewriting;
    } finally {
      this.rewriting = undefined;
      this.kick();
    }
  }

  private async writeReplacement(payloads: Iterable<Buffer>): Promise<void> {
    const tmp = `${this.path}.rewrite`;
    const out = await open(tmp, 'w');
    let written: number; // the new log's length: where appends continue
    try {
      written = await writeFrames(out, payloads);
      await out.datasync();
    } finally {
      await out.close();
    }
    await this.takeOver(tmp, written);
  }

  /** Puts the fsynced file at `tmp` (`length` bytes of frames) in the log's place. */
  private async takeOver(tmp: string, length: number): Promise<void> {
    await rename(tmp, this.path);
    fsyncDir(dirname(this.path));
    await this.handle.close();
    this.handle = await open(this.path, 'a+');
    this.end = length;
    this.settledEnd = length;
  }

  /**
   * Compaction of a large log without holding appends back while it copies: `payloads` (the live
   * records among the frames before offset `from`) are written to a new file while appends go on
   * to this one. Then appends wait only while the frames from `from` on (the ones appended since,
   * whatever they are) are copied after them, unchanged and in order, and the new file takes the
   * log's place. Resolves with where that copied tail starts in the new file: a frame that was at
   * offset `o >= from` is now at `o - from + tailStart`.
   */
  async compactBefore(from: number, payloads: Iterable<Buffer>): Promise<number> {
    if (this.closed) throw new Error(`append-log ${this.path} is closed`);
    if (this.rewriting) throw new Error(`append-log ${this.path} is already being rewritten`);
    if (this.compacting) throw new Error(`append-log ${this.path} is already being compacted`);
    if (from > this.end) throw new Error(`append-log ${this.path}: compaction from ${from} is past its end (${this.end})`);
    this.compacting = true;
    const tmp = `${this.path}.rewrite`;
    let out: FileHandle | undefined;
    let release: (() => void) | undefined;
    try {
      out = await open(tmp, 'w');
      const tailStart = await writeFrames(out, payloads, COMPACT_CHUNK, COMPACT_SYNC);
      await out.datasync(); // the bulk is flushed before appends wait, so they wait only for the tail's
      // From here until the new file is in place, appends wait: the tail must be all of them.
      this.rewriting = new Promise<void>((r) => (release = r));
      await this.drain();
      const tail = this.end - from;
      const chunk = Buffer.allocUnsafe(Math.min(IO_CHUNK, Math.max(tail, 1)));
      for (let done = 0; done < tail; ) {
        const { bytesRead } = await this.handle.read(chunk, 0, Math.min(chunk.length, tail - done), from + done);
        if (bytesRead === 0) throw new Error(`append-log ${this.path}: ended at ${from + done} while copying up to ${this.end}`);
        await out.write(chunk.subarray(0, bytesRead));
        done += bytesRead;
      }
      await out.datasync();
      await out.close();
      out = undefined;
      await this.takeOver(tmp, tailStart + tail);
      return tailStart;
    } catch (err) {
      await out?.close();
      await rm(tmp, { force: true });
      throw err;
    } finally {
      this.compacting = false;
      if (release) {
        this.rewriting = undefined;
        release();
        this.kick();
      }
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.rewriting?.catch(() => undefined);
    await this.drain();
    await this.handle.close();
  }
}

/** Calls `onRecord` for each intact frame of an open file, in order, up to the first torn or corrupt one; the bytes of intact frames. */
export async function replay(handle: FileHandle, onRecord: (payload: Buffer, offset: number) => void): Promise<number> {
  let offset = 0;
  let carry = Buffer.alloc(0);
  let position = 0;
  const chunk = Buffer.allocUnsafe(IO_CHUNK);
  for (;;) {
    const { bytesRead } = await handle.read(chunk, 0, chunk.length, position);
    if (bytesRead === 0) break;
    position += bytesRead;
    let buf = carry.length > 0 ? Buffer.concat([carry, chunk.subarray(0, bytesRead)]) : Buffer.from(chunk.subarray(0, bytesRead));
    let cursor = 0;
    for (;;) {
      const payload = frameAt(buf, cursor);
      if (payload === 'partial') break;
      if (payload === 'corrupt') return offset;
      onRecord(Buffer.from(payload), offset);
      cursor += frameLength(payload.length);
      offset += frameLength(payload.length);
    }
    carry = buf.subarray(cursor);
    buf = carry;
  }
  return offset;
}

/**
 * Writes `payloads` as frames to `out` in chunks of about `chunkBytes`; the bytes written. With
 * `syncBytes`, fsyncs whenever that many have been written since the last time, so little is left
 * to flush at the end.
 */
export async function writeFrames(out: FileHandle, payloads: Iterable<Buffer>, chunkBytes = IO_CHUNK, syncBytes = Infinity): Promise<number> {
  let written = 0;
  let synced = 0;
  let chunk: Buffer[] = [];
  let pending = 0;
  for (const p of payloads) {
    const f = frame(p);
    chunk.push(f);
    pending += f.length;
    if (pending >= chunkBytes) {
      await out.write(Buffer.concat(chunk));
      written += pending;
      chunk = [];
      pending = 0;
      if (written - synced >= syncBytes) {
        await out.datasync();
        synced = written;
      }
    }
  }
  if (pending > 0) await out.write(Buffer.concat(chunk));
  return written + pending;
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** The frame starting at `at` in `buf`: its payload, 'partial' when `buf` ends before the frame does, or 'corrupt'. */
function frameAt(buf: Buffer, at: number): Buffer | 'partial' | 'corrupt' {
  if (buf.length - at < HEADER) return 'partial';
  const len = buf.readUInt32LE(at);
  if (len > MAX_RECORD) return 'corrupt';
  if (buf.length - at - HEADER < len) return 'partial';
  const payload = buf.subarray(at + HEADER, at + HEADER + len);
  return crc32(payload) === buf.readUInt32LE(at + 4) ? payload : 'corrupt';
}

/**
 * The payload of the frame at `offset` in a log file open for reading (synchronous: one positioned
 * read of a small record, usually). Throws when the frame there is not intact.
 */
export function readFrameSync(fd: number, offset: number, guess = 512): Buffer {
  let buf = Buffer.allocUnsafe(HEADER + guess);
  const got = readSync(fd, buf, 0, buf.length, offset);
  let frame = frameAt(buf.subarray(0, got), 0);
  if (frame === 'partial' && got === buf.length) {
    // Longer than the guess (frameAt has checked the length): read it whole.
    buf = Buffer.allocUnsafe(frameLength(buf.readUInt32LE(0)));
    frame = frameAt(buf.subarray(0, readSync(fd, buf, 0, buf.length, offset)), 0);
  }
  if (typeof frame === 'string')
    throw new Error(`the record at offset ${offset} is ${frame === 'partial' ? 'cut short or missing' : 'corrupt (length or checksum)'}`);
  return frame;
}

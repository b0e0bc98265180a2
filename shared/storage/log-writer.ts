/**
 * The append logs' writes and fdatasyncs, made on a thread of their own.
 *
 * Node.js runs its asynchronous file calls on libuv's threadpool (4 threads by default), the same
 * threads that run sharp's and onnxruntime's work. During an ingest that queue holds image work,
 * and every append's write and fdatasync wait in it behind that work: a group commit that takes a
 * millisecond on the disk takes tens of milliseconds to come back, and everything that waits for
 * one (a PUT's answer, a queue's send, receive and delete) waits that long. This thread makes the
 * same two calls synchronously, one batch after another, and nothing but the logs' batches waits in
 * its queue. It holds no state: each message names the file descriptor, which stays open until its
 * log has drained (`AppendLog.close` and its rewrites wait for every batch in flight).
 */
import { Worker } from 'node:worker_threads';

/** CommonJS, evaluated as is: the thread loads no project code and no TypeScript loader. */
const THREAD_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { writeSync, fdatasyncSync } = require('node:fs');
parentPort.on('message', ({ id, fd, bytes }) => {
  try {
    for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at, bytes.length - at, null);
    fdatasyncSync(fd);
    parentPort.postMessage({ id });
  } catch (err) {
    parentPort.postMessage({ id, error: { message: String(err && err.message), code: err && err.code } });
  }
});
`;

interface Waiting {
  resolve: () => void;
  reject: (err: Error) => void;
}

interface Thread {
  worker: Worker;
  waiting: Map<number, Waiting>;
}

export class LogWriterThread {
  private thread: Thread | undefined;
  private nextId = 0;

  /** Appends `bytes` at the end of the file open (for appending) as `fd`, then fdatasyncs it; resolves once both are done. */
  appendAndSync(fd: number, bytes: Uint8Array): Promise<void> {
    const { worker, waiting } = this.thread ?? this.start();
    const id = this.nextId++;
    return new Promise<void>((resolve, reject) => {
      waiting.set(id, { resolve, reject });
      // The thread keeps the process alive only while a batch is in flight.
      if (waiting.size === 1) worker.ref();
      // Copied, not transferred: a small Buffer's memory is a slice of Node.js's shared pool.
      worker.postMessage({ id, fd, bytes });
    });
  }

  private start(): Thread {
    const worker = new Worker(THREAD_SOURCE, { eval: true });
    const thread: Thread = { worker, waiting: new Map() };
    const { waiting } = thread;
    worker.unref();
    worker.on('message', (m: { id: number; error?: { message: string; code?: string } }) => {
      const w = waiting.get(m.id);
      waiting.delete(m.id);
      if (waiting.size === 0) worker.unref();
      if (!w) return;
      if (m.error) w.reject(Object.assign(new Error(m.error.message), m.error.code ? { code: m.error.code } : {}));
      else w.resolve();
    });
    const fail = (err: Error) => {
      if (this.thread === thread) this.thread = undefined;
      for (const w of waiting.values()) w.reject(err);
      waiting.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the append logs' writer thread exited (code ${code})`)));
    this.thread = thread;
    return thread;
  }
}

/** The process's one writer thread, shared by every append log. */
export const logWriterThread = new LogWriterThread();

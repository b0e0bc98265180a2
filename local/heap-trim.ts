/**
 * Hands the C heap's free pages back to the system now and then (glibc's `malloc_trim`).
 *
 * glibc returns freed memory to the system only from the top of a heap. The stack's native
 * allocations (Node.js buffers, sharp, onnxruntime) come and go around longer-lived ones, so free
 * pages pile up inside the heaps and stay in the RSS. At the end of a 100,000-image ingest that was
 * 45 MiB of a 335 MiB RSS: one `malloc_trim(0)` in the running stack took its main heap from 71 to
 * 38 MiB and its thread arenas from 37 to 23 MiB (docs/BENCHMARKS.md). Nothing in Node.js can ask
 * for it, so the call goes through koffi (a C FFI with prebuilt binaries, loaded only here).
 *
 * Only on Linux with glibc; elsewhere (macOS, musl) `loadMallocTrim` finds nothing to call and the
 * stack runs without it.
 */

/**
 * Seconds between trims. A trim costs about 1.2-1.7 ms per MiB it returns on this project's 2-core
 * machine (39 ms for 23 MiB, 224 ms for 182 MiB) and under 5 ms when there is nothing to return. It
 * runs on a libuv worker thread, but it holds each heap's lock while it walks that heap, so a
 * main-thread allocation meanwhile waits: a synthetic test's event loop stalled for a whole 224 ms
 * trim. In the stack during an ingest, nine trims of 23-96 ms left event-loop gaps of at most 21 ms
 * (docs/BENCHMARKS.md).
 */
export const TRIM_INTERVAL_SECONDS = 30;

let glibcRuntime: boolean | undefined;

/** Whether this process runs on glibc (Node.js reports its version; musl and other systems have none). Asked once: a report takes milliseconds. */
export function hasGlibc(): boolean {
  if (glibcRuntime === undefined) {
    const report = process.platform === 'linux' ? (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined) : undefined;
    glibcRuntime = Boolean(report?.header?.glibcVersionRuntime);
  }
  return glibcRuntime;
}

/** An asynchronous trim: resolves to 1 if memory went back to the system, else 0. */
export type HeapTrim = () => Promise<number>;

let libc: import('koffi').LibraryHandle | null | undefined;

/** A function of glibc's C library through koffi (loaded once), or undefined where there is none (or koffi cannot load). */
function glibcFunction(signature: string): ReturnType<import('koffi').LibraryHandle['func']> | undefined {
  if (libc === undefined) {
    try {
      libc = hasGlibc() ? (require('koffi') as typeof import('koffi')).load('libc.so.6') : null;
    } catch {
      libc = null;
    }
  }
  try {
    return libc?.func(signature);
  } catch {
    return undefined;
  }
}

/** glibc's `malloc_trim(0)`, called off the main thread. Undefined where there is no glibc to call. */
export function loadMallocTrim(): HeapTrim | undefined {
  const trim = glibcFunction('int malloc_trim(size_t pad)');
  if (!trim) return undefined;
  return () => new Promise((resolve, reject) => trim.async(0, (err: unknown, released: number) => (err ? reject(err) : resolve(released))));
}

/** `mallopt`'s parameters (glibc's malloc.h). */
const M_TRIM_THRESHOLD = -1;
const M_MMAP_THRESHOLD = -3;
/** Allocations from this size on get a mapping of their own, and free space past it at a heap's top goes back at once: glibc's initial thresholds, kept. */
export const MMAP_THRESHOLD_BYTES = 128 * 1024;

/**
 * Keeps glibc's mmap and trim thresholds at 128 KiB. By default glibc raises the mmap threshold each
 * time a mapped allocation larger than it is freed (up to 32 MiB), and the trim threshold to twice
 * that. Once a few MiB of sharp's and onnxruntime's buffers have been freed, every image-sized buffer
 * comes from the heap, and the heap's top is given back only past 64 MiB free: the stack's main heap
 * swung between 27 and 86 MiB between trims through a 100,000-image ingest. Thresholds set
 * explicitly are no longer adjusted: with them the same ingest's main heap stayed at 19-38 MiB
 * (61-63 twice), its thread arenas at 13-17 MiB instead of 20-30, at the same ingest rate
 * (docs/BENCHMARKS.md). Both thresholds are set, since the trim threshold may have been raised
 * before this call. Returns whether they were set (Linux with glibc).
 */
export function fixMmapThreshold(): boolean {
  const mallopt = glibcFunction('int mallopt(int param, int value)');
  if (!mallopt) return false;
  return mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) === 1 && mallopt(M_TRIM_THRESHOLD, MMAP_THRESHOLD_BYTES) === 1;
}

export interface HeapTrimming {
  /** Trims done, and how many of them gave memory back. */
  readonly trims: number;
  readonly released: number;
  stop(): void;
}

/**
 * Calls `trim` (`loadMallocTrim()`'s, or none) every `intervalSeconds` without keeping the process
 * alive, never two at once. A trim that fails stops the trimming (it is an optimisation: the stack
 * carries on without it) and is reported once.
 */
export function startHeapTrimming(
  trim: HeapTrim | undefined,
  intervalSeconds = TRIM_INTERVAL_SECONDS,
  warn: (message: string) => void = console.warn,
): HeapTrimming {
  let trims = 0;
  let released = 0;
  let running = false;
  let timer: NodeJS.Timeout | undefined;
  const stop = () => {
    if (timer) clearInterval(timer);
    timer = undefined;
  };
  if (trim) {
    timer = setInterval(() => {
      if (running) return;
      running = true;
      // A trim that throws at once fails like one that rejects.
      Promise.resolve()
        .then(trim)
        .then(
          (result) => {
            released += result === 1 ? 1 : 0;
            trims += 1;
          },
          (err: unknown) => {
            stop();
            warn(`[pipeline] returning free heap memory to the system failed, not trying again: ${(err as Error).message}`);
          },
        )
        .finally(() => {
          running = false;
        });
    }, intervalSeconds * 1000);
    timer.unref();
  }
  return {
    get trims() {
      return trims;
    },
    get released() {
      return released;
    },
    stop,
  };
}

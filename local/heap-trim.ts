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

/** Seconds between trims: a trim walks the free chunks of every heap, so it costs little when there is nothing to give back. */
export const TRIM_INTERVAL_SECONDS = 30;

/** Whether this process runs on glibc (Node.js reports its version; musl and other systems have none). */
export function hasGlibc(): boolean {
  if (process.platform !== 'linux') return false;
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return Boolean(report?.header?.glibcVersionRuntime);
}

/** glibc's `malloc_trim(0)`: 1 if memory went back to the system. Undefined where there is no glibc to call. */
export function loadMallocTrim(): (() => number) | undefined {
  if (!hasGlibc()) return undefined;
  try {
    const koffi = require('koffi') as typeof import('koffi');
    const trim = koffi.load('libc.so.6').func('int malloc_trim(size_t pad)') as (pad: number) => number;
    return () => trim(0);
  } catch {
    return undefined;
  }
}

export interface HeapTrimming {
  /** Trims done, and how many of them gave memory back. */
  readonly trims: number;
  readonly released: number;
  stop(): void;
}

/**
 * Calls `trim` (`loadMallocTrim()`'s, or none) every `intervalSeconds` without keeping the process alive. A trim that throws stops
 * the trimming (it is an optimisation: the stack carries on without it) and is reported once.
 */
export function startHeapTrimming(
  trim: (() => number) | undefined,
  intervalSeconds = TRIM_INTERVAL_SECONDS,
  warn: (message: string) => void = console.warn,
): HeapTrimming {
  let trims = 0;
  let released = 0;
  let timer: NodeJS.Timeout | undefined;
  const stop = () => {
    if (timer) clearInterval(timer);
    timer = undefined;
  };
  if (trim) {
    timer = setInterval(() => {
      try {
        released += trim() === 1 ? 1 : 0;
        trims += 1;
      } catch (err) {
        stop();
        warn(`[pipeline] returning free heap memory to the system failed, not trying again: ${(err as Error).message}`);
      }
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

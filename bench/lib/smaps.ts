import { readFileSync } from 'node:fs';

/** glibc reserves each thread arena's heap at an address aligned to 64 MiB (HEAP_MAX_SIZE on 64-bit). */
const ARENA_ALIGN = 64n << 20n;

/**
 * Resident MiB of glibc's heaps in a process, from /proc/<pid>/smaps: the main heap (`[heap]`, what
 * the main thread mallocs) and the thread arenas (anonymous mappings that start on a 64 MiB boundary
 * and are no larger than that: a heuristic, since an unrelated mapping can start on one too).
 */
export function glibcHeapsMiB(pid: number): { mainHeapMiB: number; threadArenasMiB: number } {
  let main = 0;
  let arenas = 0;
  let current: 'main' | 'arena' | undefined;
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (m) {
      const start = BigInt(`0x${m[1]}`);
      const size = BigInt(`0x${m[2]}`) - start;
      const path = m[3]!.trim();
      current = path === '[heap]' ? 'main' : path === '' && start % ARENA_ALIGN === 0n && size <= ARENA_ALIGN ? 'arena' : undefined;
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss && current === 'main') main += Number(rss[1]);
    if (rss && current === 'arena') arenas += Number(rss[1]);
  }
  return { mainHeapMiB: main / 1024, threadArenasMiB: arenas / 1024 };
}

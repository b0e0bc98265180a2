import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { hasGlibc, loadMallocTrim, startHeapTrimming } from '../../../local/heap-trim';

const root = join(__dirname, '..', '..', '..');

/** Runs `script` in a fresh Node.js process (with gc exposed, from the repository root) and returns the `drop` its last line prints. */
function dropPrinted(script: string): number {
  const out = execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', '-e', script], { cwd: root, encoding: 'utf8' });
  return (JSON.parse(out.trim().split('\n').pop()!) as { drop: number }).drop;
}

/**
 * In a fresh Node.js process: fills 400 buffers of 96 KiB (below glibc's mapping threshold, so in
 * its heap), frees every other one (each free chunk sits between two live ones, so free() cannot
 * give it back), then trims or not. Prints the RSS drop in MiB.
 */
function rssDropMiB(trim: boolean): number {
  const script = `
    const { loadMallocTrim } = require('./local/heap-trim.ts');
    const trim = loadMallocTrim();
    const kept = [];
    let freed = [];
    for (let i = 0; i < 400; i += 1) {
      const b = Buffer.allocUnsafeSlow(96 * 1024).fill(i & 255);
      (i % 2 ? freed : kept).push(b);
    }
    freed = null;
    globalThis.gc();
    setTimeout(async () => {
      globalThis.gc();
      const before = process.memoryUsage.rss();
      if (${trim}) await trim();
      const after = process.memoryUsage.rss();
      console.log(JSON.stringify({ drop: (before - after) / 2 ** 20, kept: kept.length }));
    }, 300);
  `;
  return dropPrinted(script);
}

/**
 * In a fresh Node.js process, with glibc's mmap threshold fixed or not: frees an 8 MiB buffer (a
 * mapping of its own, whose free raises glibc's threshold by default), then fills 200 buffers of
 * 256 KiB, frees every other one, and prints the RSS drop in MiB. No trim.
 */
function rssDropAfterFreesMiB(fixThreshold: boolean): number {
  const script = `
    const { fixMmapThreshold } = require('./local/heap-trim.ts');
    if (${fixThreshold} && !fixMmapThreshold()) throw new Error('mallopt failed');
    let big = Buffer.allocUnsafeSlow(8 * 2 ** 20).fill(1);
    big = null;
    globalThis.gc();
    setTimeout(() => {
      const kept = [];
      let freed = [];
      for (let i = 0; i < 200; i += 1) {
        const b = Buffer.allocUnsafeSlow(256 * 1024).fill(i & 255);
        (i % 2 ? freed : kept).push(b);
      }
      globalThis.gc();
      const before = process.memoryUsage.rss();
      freed = null;
      globalThis.gc();
      setTimeout(() => {
        globalThis.gc();
        const after = process.memoryUsage.rss();
        console.log(JSON.stringify({ drop: (before - after) / 2 ** 20, kept: kept.length }));
      }, 300);
    }, 300);
  `;
  return dropPrinted(script);
}

describe('heap trimming', () => {
  afterEach(() => jest.useRealTimers());

  (hasGlibc() ? it : it.skip)(
    'gives the free pages inside glibc’s heap back to the system (Linux, glibc)',
    () => {
      expect(loadMallocTrim()).toBeInstanceOf(Function);
      // 200 freed chunks of 96 KiB: about 18 MiB of whole free pages.
      expect(rssDropMiB(true)).toBeGreaterThan(10);
      // The same heap without the trim keeps them.
      expect(rssDropMiB(false)).toBeLessThan(2);
    },
    60_000,
  );

  (hasGlibc() ? it : it.skip)(
    'keeps image-sized buffers out of glibc’s heap once a larger one was freed, when the thresholds are fixed (Linux, glibc)',
    () => {
      // 100 freed buffers of 256 KiB: 25 MiB, each its own mapping with the threshold fixed.
      expect(rssDropAfterFreesMiB(true)).toBeGreaterThan(20);
      // By default the freed 8 MiB buffer raised the threshold: they came from the heap, between live ones, and stay.
      expect(rssDropAfterFreesMiB(false)).toBeLessThan(3);
    },
    60_000,
  );

  it('trims on every interval, counts the trims that released memory, and stops', async () => {
    jest.useFakeTimers();
    const results = [1, 0, 1];
    const trim = jest.fn(async () => results.shift() ?? 0);
    const trimming = startHeapTrimming(trim, 30);
    await jest.advanceTimersByTimeAsync(29_999);
    expect(trim).not.toHaveBeenCalled();
    await jest.advanceTimersByTimeAsync(60_001);
    expect(trimming.trims).toBe(3);
    expect(trimming.released).toBe(2);
    trimming.stop();
    await jest.advanceTimersByTimeAsync(300_000);
    expect(trim).toHaveBeenCalledTimes(3);
  });

  it('never starts a trim while one is still running', async () => {
    jest.useFakeTimers();
    let finish: (released: number) => void = () => undefined;
    const trim = jest.fn(() => new Promise<number>((resolve) => (finish = resolve)));
    const trimming = startHeapTrimming(trim, 1);
    await jest.advanceTimersByTimeAsync(5_000);
    expect(trim).toHaveBeenCalledTimes(1);
    finish(1);
    await jest.advanceTimersByTimeAsync(1_000);
    expect(trimming.released).toBe(1);
    expect(trim).toHaveBeenCalledTimes(2);
    trimming.stop();
  });

  it('stops for good, saying so once, when a trim fails', async () => {
    jest.useFakeTimers();
    const warn = jest.fn();
    const trim = jest.fn(async () => {
      throw new Error('symbol not found');
    });
    const trimming = startHeapTrimming(trim, 1, warn);
    await jest.advanceTimersByTimeAsync(10_000);
    expect(trim).toHaveBeenCalledTimes(1);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn.mock.calls[0]![0]).toMatch(/not trying again: symbol not found/);
    expect(trimming.trims).toBe(0);
  });

  it('does nothing where there is no trim to call', async () => {
    jest.useFakeTimers();
    const trimming = startHeapTrimming(undefined, 1);
    await jest.advanceTimersByTimeAsync(10_000);
    expect(trimming.trims).toBe(0);
    trimming.stop();
  });
});

/** Shared by the benchmarks: machine description, result files, percentiles. */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';

export const ROOT = resolve(__dirname, '..', '..');
export const PYTHON = join(ROOT, '.venv', 'bin', 'python');

export function machine() {
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    gpu: 'none',
  };
}

export interface BenchContext {
  quick: boolean;
  args: string[];
}

/** Writes bench/results/<name>.json (quick runs: bench/results/<name>-quick.json, git-ignored). */
export function writeResult(ctx: BenchContext, name: string, result: Record<string, unknown>, bench = name): string {
  const dir = join(ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}${ctx.quick ? '-quick' : ''}.json`);
  const body = {
    benchmark: name,
    quick: ctx.quick,
    date: new Date().toISOString(),
    command: `npm run bench -- ${[bench, ...ctx.args, ...(ctx.quick ? ['--quick'] : [])].join(' ')}`,
    machine: machine(),
    ...result,
  };
  writeFileSync(file, `${JSON.stringify(body, null, 2)}\n`);
  console.log(`[bench] wrote ${file}`);
  return file;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export function summarize(samplesMs: number[]) {
  const s = [...samplesMs].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / Math.max(1, s.length);
  return {
    n: s.length,
    meanMs: round(mean),
    p50Ms: round(percentile(s, 50)),
    p90Ms: round(percentile(s, 90)),
    p99Ms: round(percentile(s, 99)),
    maxMs: round(s[s.length - 1] ?? NaN),
  };
}

/** Least-squares slope of y against x. */
export function slope(points: Array<[number, number]>): number {
  const n = points.length;
  const mx = points.reduce((a, [x]) => a + x, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

export const round = (x: number, digits = 3) => Math.round(x * 10 ** digits) / 10 ** digits;

// biome-ignore lint/suspicious/noExplicitAny: the JSON a benchmark script prints; each caller reads the fields it knows.
export function pythonJson(args: string[]): any {
  const out = execFileSync(PYTHON, args, { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'inherit'] });
  const last = out.trim().split('\n').pop()!;
  return JSON.parse(last);
}

export function flag(args: string[], name: string): string | undefined {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? args[at + 1] : undefined;
}

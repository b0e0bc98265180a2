/** Drives wrk (a separate process on loopback) against the API and parses its report. */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface WrkResult {
  connections: number;
  durationSeconds: number;
  requests: number;
  requestsPerSecond: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  non2xx: number;
  socketErrors: { connect: number; read: number; write: number; timeout: number };
}

function ms(value: string, unit: string): number {
  const v = Number(value);
  return unit === 'us' ? v / 1000 : unit === 's' ? v * 1000 : unit === 'm' ? v * 60_000 : v;
}

export function parseWrk(out: string, connections: number, durationSeconds: number): WrkResult {
  const pct = (p: string) => {
    const m = new RegExp(`^\\s*${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(out);
    if (!m) throw new Error(`wrk output has no ${p}% latency:\n${out}`);
    return ms(m[1]!, m[2]!);
  };
  const max = /Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s|m)/.exec(out);
  const total = /(\d+) requests in/.exec(out);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  if (!total || !rps) throw new Error(`unexpected wrk output:\n${out}`);
  return {
    connections,
    durationSeconds,
    requests: Number(total[1]),
    requestsPerSecond: Number(rps[1]),
    latencyMs: { p50: pct('50'), p90: pct('90'), p99: pct('99'), max: max ? ms(max[1]!, max[2]!) : NaN },
    non2xx: non2xx ? Number(non2xx[1]) : 0,
    socketErrors: sock
      ? { connect: Number(sock[1]), read: Number(sock[2]), write: Number(sock[3]), timeout: Number(sock[4]) }
      : { connect: 0, read: 0, write: 0, timeout: 0 },
  };
}

/** GET /neighbors?key=K&k=10 round-robin over `keys`, `connections` connections for `durationSeconds`. */
export async function wrkNeighbors(api: string, keys: string[], connections: number, durationSeconds: number): Promise<WrkResult> {
  const dir = mkdtempSync(join(tmpdir(), 'wrk-'));
  const script = join(dir, 'neighbors.lua');
  const list = keys.map((k) => `"${encodeURIComponent(k)}"`).join(',');
  writeFileSync(
    script,
    `local keys = {${list}}\nlocal i = 0\nrequest = function()\n  i = i + 1\n  return wrk.format("GET", "/neighbors?k=10&key=" .. keys[(i % #keys) + 1])\nend\n`,
  );
  const { stdout } = await run('wrk', ['-t', '2', '-c', String(connections), '-d', `${durationSeconds}s`, '--timeout', '5s', '--latency', '-s', script, api], {
    maxBuffer: 1 << 20,
  });
  return parseWrk(stdout, connections, durationSeconds);
}

/** A process's resident memory in MiB from /proc/<pid>/status: `VmRSS`, or a part of it such as `RssAnon` (heaps, not mapped files). */
export function rssMb(pid: number, field: 'VmRSS' | 'RssAnon' = 'VmRSS'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(status);
  return m ? Number(m[1]) / 1024 : NaN;
}

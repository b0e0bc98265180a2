/**
 * Peak memory of the embedded S3 server (its own process, `scripts/local-s3.ts`) while large
 * objects are uploaded to it: one single PUT streamed from memory in 1 MiB chunks, and one
 * multipart upload by the AWS CLI from a file. The peak is the kernel's high-water mark (VmHWM).
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const repoRoot = resolve(__dirname, '../..');
const MiB = 1024 * 1024;

function peakRssMiB(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Math.round(Number(m![1]) / 1024);
}

function chunkOf(i: number): Buffer {
  return Buffer.alloc(MiB, i % 251);
}

/** PUT of `mib` MiB over plain HTTP with a Content-Length, written 1 MiB at a time; resolves with the ETag and the expected MD5. */
function streamedPut(endpoint: string, path: string, mib: number): Promise<{ status: number; etag: string; md5: string }> {
  const url = new URL(path, endpoint);
  const md5 = createHash('md5');
  return new Promise((resolvePut, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        method: 'PUT',
        path: url.pathname,
        headers: { 'content-length': mib * MiB, 'content-type': 'application/octet-stream' },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolvePut({ status: res.statusCode ?? 0, etag: String(res.headers.etag ?? ''), md5: md5.digest('hex') }));
      },
    );
    req.on('error', reject);
    let i = 0;
    const writeMore = () => {
      while (i < mib) {
        const chunk = chunkOf(i);
        md5.update(chunk);
        i += 1;
        if (!req.write(chunk)) {
          req.once('drain', writeMore);
          return;
        }
      }
      req.end();
    };
    writeMore();
  });
}

export interface UploadMemoryResult {
  mib: number;
  baselinePeakRssMiB: number;
  singlePut: { seconds: number; mibPerSecond: number; peakRssMiB: number; etagMatches: boolean };
  multipartCli: { seconds: number; mibPerSecond: number; peakRssMiB: number };
}

export async function measureUploadMemory(mib: number): Promise<UploadMemoryResult> {
  const work = mkdtempSync(join(tmpdir(), 's3-upload-memory-'));
  const child = spawn(
    resolve(repoRoot, 'node_modules/.bin/tsx'),
    ['scripts/local-s3.ts', '--data-dir', join(work, 'data'), '--port', '0', '--buckets', 'images'],
    {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  try {
    let out = '';
    const { pid, endpoint } = await new Promise<{ pid: number; endpoint: string }>((resolveReady, reject) => {
      const timer = setTimeout(() => reject(new Error(`S3 server not ready: ${out}`)), 60_000);
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /s3 pid (\d+)\s+s3 ready (\S+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolveReady({ pid: Number(m[1]), endpoint: m[2]! });
        }
      });
      child.once('exit', (code) => reject(new Error(`S3 server exited with ${code}: ${out}`)));
    });
    const baselinePeakRssMiB = peakRssMiB(pid);

    let t0 = Date.now();
    const put = await streamedPut(endpoint, '/images/single.bin', mib);
    if (put.status !== 200) throw new Error(`PUT answered ${put.status}`);
    let seconds = (Date.now() - t0) / 1000;
    const singlePut = { seconds, mibPerSecond: Math.round(mib / seconds), peakRssMiB: peakRssMiB(pid), etagMatches: put.etag === `"${put.md5}"` };

    const file = join(work, 'multipart.bin');
    const fd = openSync(file, 'w');
    for (let i = 0; i < mib; i += 1) writeSync(fd, chunkOf(i));
    closeSync(fd);
    t0 = Date.now();
    await promisify(execFile)('aws', ['--endpoint-url', endpoint, 's3', 'cp', file, 's3://images/multipart.bin', '--only-show-errors'], {
      env: { ...process.env, AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local', AWS_DEFAULT_REGION: 'us-east-1' },
    });
    seconds = (Date.now() - t0) / 1000;
    const multipartCli = { seconds, mibPerSecond: Math.round(mib / seconds), peakRssMiB: peakRssMiB(pid) };
    return { mib, baselinePeakRssMiB, singlePut, multipartCli };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    rmSync(work, { recursive: true, force: true });
  }
}

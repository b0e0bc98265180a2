/** Runs the embedded stack as a user does (`tsx local/main.ts`) on free ports, for end-to-end tests. */
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';

export interface StackProcess {
  s3: string;
  api: string;
  /** The stack's own process (tsx runs it as a child of the process started here). */
  pid: number;
  /** kill -9 of the stack process itself; resolves when it is gone. */
  crash(): Promise<void>;
  child: ChildProcess;
  output: () => string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

const repoRoot = resolve(__dirname, '../..');

/** `nodeArgs`: Node.js flags for the stack process (tsx passes them on), e.g. --cpu-prof. */
export async function startStackProcess(dataDir: string, env: Record<string, string> = {}, nodeArgs: string[] = []): Promise<StackProcess> {
  const child = spawn(resolve(repoRoot, 'node_modules/.bin/tsx'), [...nodeArgs, 'local/main.ts'], {
    cwd: repoRoot,
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', PIPELINE_DATA_DIR: dataDir, S3_PORT: '0', API_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const ready = await new Promise<{ s3: string; api: string; pid: number }>((resolveReady, reject) => {
    const timer = setTimeout(() => reject(new Error(`stack not ready after 120 s:\n${output}`)), 120_000);
    const onData = () => {
      const m = /\[pipeline\] ready s3=(\S+) api=(\S+) data=\S+ pid=(\d+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolveReady({ s3: m[1]!, api: m[2]!, pid: Number(m[3]) });
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`stack exited with ${code}:\n${output}`));
    });
  });
  return {
    ...ready,
    child,
    output: () => output,
    crash: async () => {
      const exited = child.exitCode !== null ? Promise.resolve() : new Promise<void>((res) => child.once('exit', () => res()));
      process.kill(ready.pid, 'SIGKILL');
      await exited; // tsx exits once its child is gone
    },
    stop: (signal: NodeJS.Signals = 'SIGTERM') =>
      new Promise((res) => {
        if (child.exitCode !== null) return res(child.exitCode);
        child.once('exit', (code) => res(code));
        child.kill(signal);
      }),
  };
}

export async function getJson<T = unknown>(url: string): Promise<{ status: number; body: T }> {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as T };
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number, intervalMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

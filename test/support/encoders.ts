/** Encoders to import, made by scripts/make-encoder.py, and the CLI line that imports one into a running stack. */
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

const ROOT = resolve(__dirname, '../..');

export function makeEncoder(args: string[]): Record<string, unknown> {
  const res = spawnSync(resolve(ROOT, '.venv/bin/python'), ['scripts/make-encoder.py', ...args], { cwd: ROOT, encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`make-encoder ${args.join(' ')} failed:\n${res.stderr}`);
  return JSON.parse(res.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
}

/** `models import` of `onnx` at `size` into the embedded stack at `stack`, with weights of the small ResNet when given. */
export function importArgs(stack: { api: string; s3: string }, onnx: string, size: number, weights?: string): string[] {
  return [
    '--api',
    stack.api,
    'models',
    'import',
    onnx,
    '--input-size',
    String(size),
    ...(weights ? ['--weights', weights, '--arch', 'small-resnet'] : []),
    '--s3-endpoint',
    stack.s3,
  ];
}

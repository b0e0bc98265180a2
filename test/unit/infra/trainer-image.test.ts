/**
 * The trainer image runs what the tests run: the same torch version (CUDA build there, CPU build
 * here), the same pinned packages, on the GPU instances' platform.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = join(__dirname, '../../../gpu-trainer');
const pins = (file: string) =>
  Object.fromEntries(
    readFileSync(join(dir, file), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'))
      .map((l) => l.split('==') as [string, string]),
  );

describe('gpu-trainer/Dockerfile', () => {
  const dockerfile = readFileSync(join(dir, 'Dockerfile'), 'utf8');

  it('builds for linux/amd64 with the torch version the tests use', () => {
    expect(dockerfile).toMatch(/^FROM --platform=linux\/amd64 python:3\.11-/m);
    const testTorch = pins('requirements.txt').torch!.replace(/\+cpu$/, '');
    expect(dockerfile).toContain(`torch==${testTorch}`);
  });

  it('pins every other package to the version the tests install', () => {
    const test = pins('requirements.txt');
    const image = pins('requirements-gpu.txt');
    expect(Object.keys(image)).toEqual(expect.arrayContaining(['boto3', 'numpy', 'onnx', 'onnxruntime', 'matplotlib']));
    for (const [name, version] of Object.entries(image)) {
      expect(version).toMatch(/^\d+(\.\d+)+(\.post\d+)?$/);
      expect(test[name]).toBe(version);
    }
  });
});

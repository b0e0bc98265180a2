/**
 * A fresh `npm ci` must download nothing but npm packages. Dependency install scripts are the only
 * code npm runs at install time, so every package in the lockfile that has one must be declared in
 * package.json `allowScripts`; the ones that fetch from other hosts (onnxruntime-node: CUDA from
 * NuGet) must be denied. npm honours a `false` entry at install time.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(__dirname, '..', '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { allowScripts?: Record<string, boolean>; engines: { node: string } };
const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as {
  packages: Record<string, { hasInstallScript?: boolean; engines?: Record<string, string> | string[]; dev?: boolean; optional?: boolean }>;
};

const packageName = (path: string) => path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length);

describe('install', () => {
  it('declares every dependency install script in allowScripts', () => {
    const withScripts = Object.entries(lock.packages)
      .filter(([path, meta]) => path !== '' && meta.hasInstallScript)
      .map(([path]) => packageName(path));
    expect(withScripts.length).toBeGreaterThan(0);
    const undeclared = withScripts.filter((name) => pkg.allowScripts?.[name] === undefined);
    expect(undeclared).toEqual([]);
  });

  it('never runs onnxruntime-node install script, which downloads CUDA libraries from NuGet', () => {
    expect(pkg.allowScripts?.['onnxruntime-node']).toBe(false);
  });

  it('installs no package whose engines exclude the Node.js version package.json supports', () => {
    const minimum = /^>=(\d+)/.exec(pkg.engines.node)![1]!;
    const excluding = Object.entries(lock.packages)
      .filter(([path, meta]) => path !== '' && meta.engines && !Array.isArray(meta.engines) && meta.engines.node)
      .filter(([, meta]) => {
        const range = (meta.engines as Record<string, string>).node!;
        const lowest = /^>=\s*(\d+)/.exec(range.trim());
        return lowest !== null && !range.includes('||') && Number(lowest[1]) > Number(minimum);
      })
      .map(([path, meta]) => `${packageName(path)} (${(meta.engines as Record<string, string>).node})`);
    expect(excluding).toEqual([]);
  });
});

/**
 * Jest's node environment with the host realm's typed arrays. Native addons (onnxruntime-node)
 * create typed arrays in Node's own realm, and `instanceof Float32Array` inside Jest's sandbox
 * would otherwise reject them.
 *
 * A file handle that is never closed (Node warns DEP0137 when the garbage collector closes it)
 * fails the test file during which the warning arrives when the project's code opened it: every
 * `fs/promises` open made after this module loads (so every open in the project's code) is
 * remembered with where it happened, and the failure names the culprit. A handle opened
 * elsewhere (by a module that took `open` before this one patched it: the test runner's own) is
 * reported on stderr instead, since nothing here can close it.
 */
const { TestEnvironment } = require('jest-environment-node');

const SHARED = [
  'ArrayBuffer',
  'SharedArrayBuffer',
  'DataView',
  'Int8Array',
  'Uint8Array',
  'Uint8ClampedArray',
  'Int16Array',
  'Uint16Array',
  'Int32Array',
  'Uint32Array',
  'Float32Array',
  'Float64Array',
  'BigInt64Array',
  'BigUint64Array',
];

const fsPromises = require('node:fs/promises');

/** Open FileHandles by descriptor: the path and the stack that opened each. */
const openHandles = new Map();
const realOpen = fsPromises.open;
fsPromises.open = async (...args) => {
  const handle = await realOpen(...args);
  const where = new Error().stack.split('\n').slice(2, 8).join('\n');
  const fd = handle.fd;
  openHandles.set(fd, `${String(args[0])}\n${where}`);
  handle.once?.('close', () => openHandles.get(fd) && openHandles.delete(fd));
  const realClose = handle.close.bind(handle);
  handle.close = () => {
    openHandles.delete(fd);
    return realClose();
  };
  return handle;
};

const repoRoot = require('node:path').resolve(__dirname, '..', '..');
const leaks = [];
process.on('warning', (warning) => {
  const m = /Closing file descriptor (\d+) on garbage collection/.exec(warning.message);
  if (!m) return;
  const opened = openHandles.get(Number(m[1]));
  const ours = opened?.split('\n').some((line) => line.includes(repoRoot) && !line.includes('node_modules')) ?? false;
  if (ours) leaks.push(`fd ${m[1]}, opened for ${opened}`);
  else
    process.stderr.write(
      `[jest] a file handle not opened by the project's code was closed by the garbage collector (fd ${m[1]}${opened ? `, ${opened.split('\n')[0]}` : ''})\n`,
    );
});

class HostTypedArraysEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const name of SHARED) this.global[name] = globalThis[name];
    this.testPath = context.testPath;
  }

  async teardown() {
    if (typeof global.gc === 'function') global.gc();
    // Node closes a collected FileHandle in a native callback and warns on a later tick.
    await new Promise((resolve) => setTimeout(resolve, 50));
    await super.teardown();
    if (leaks.length > 0) {
      const found = leaks.splice(0);
      throw new Error(`file handles left open (closed by the garbage collector) while running ${this.testPath}:\n${found.join('\n')}`);
    }
  }
}

module.exports = HostTypedArraysEnvironment;

/**
 * Jest's node environment with the host realm's typed arrays. Native addons (onnxruntime-node)
 * create typed arrays in Node's own realm, and `instanceof Float32Array` inside Jest's sandbox
 * would otherwise reject them.
 *
 * A file handle that is never closed (Node warns DEP0137 when the garbage collector closes it)
 * fails the test file during which the warning arrives: leaks must not pass silently. Every
 * `fs/promises` open is remembered with where it happened, so the failure names the culprit.
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

const leaks = [];
process.on('warning', (warning) => {
  const m = /Closing file descriptor (\d+) on garbage collection/.exec(warning.message);
  if (m) leaks.push(`fd ${m[1]}, opened for ${openHandles.get(Number(m[1])) ?? '(not opened through fs/promises)'}`);
  else if (warning.code === 'DEP0137') leaks.push(warning.message);
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

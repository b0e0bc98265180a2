/**
 * Jest's node environment with the host realm's typed arrays. Native addons (onnxruntime-node)
 * create typed arrays in Node's own realm, and `instanceof Float32Array` inside Jest's sandbox
 * would otherwise reject them.
 *
 * A file handle that is never closed (Node warns DEP0137 when the garbage collector closes it)
 * fails the test file during which the warning arrives: leaks must not pass silently.
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

const leaks = [];
process.on('warning', (warning) => {
  if (warning.code === 'DEP0137' || /Closing file descriptor \d+ on garbage collection/.test(warning.message)) leaks.push(warning.message);
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
      throw new Error(`file handles left open (closed by the garbage collector) while running ${this.testPath}: ${found[0]}`);
    }
  }
}

module.exports = HostTypedArraysEnvironment;

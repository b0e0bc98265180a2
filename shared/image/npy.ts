/**
 * NumPy .npy (format 1.0) for uint8 arrays: the derived-image format, read in Python with
 * `np.load(io.BytesIO(body))` and no custom parsing.
 */
const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]);

export interface U8Array {
  shape: number[];
  data: Uint8Array;
}

export function encodeNpyU8(shape: number[], data: Uint8Array): Buffer {
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw new Error(`npy: shape ${shape.join('x')} needs ${count} bytes, got ${data.length}`);
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '|u1', 'fortran_order': False, 'shape': ${shapeText}, }`;
  // Header is padded with spaces so that magic + version + length + header is a multiple of 64.
  const total = MAGIC.length + 2 + 2 + header.length + 1;
  header += `${' '.repeat((64 - (total % 64)) % 64)}\n`;
  const head = Buffer.alloc(MAGIC.length + 4);
  MAGIC.copy(head, 0);
  head.writeUInt8(1, 6);
  head.writeUInt8(0, 7);
  head.writeUInt16LE(header.length, 8);
  return Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
}

export function decodeNpyU8(buf: Buffer): U8Array {
  if (buf.length < 10 || !buf.subarray(0, 6).equals(MAGIC)) throw new Error('npy: not a .npy file');
  const major = buf.readUInt8(6);
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const headerStart = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', headerStart, headerStart + headerLen);
  if (!/'descr':\s*'\|u1'/.test(header)) throw new Error(`npy: expected uint8 data, header ${header.trim()}`);
  if (/'fortran_order':\s*True/.test(header)) throw new Error('npy: Fortran order is not supported');
  const shapeMatch = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!shapeMatch) throw new Error('npy: no shape in header');
  const shape = shapeMatch[1]!
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map(Number);
  const start = headerStart + headerLen;
  const count = shape.reduce((a, b) => a * b, 1);
  if (buf.length - start < count) throw new Error(`npy: truncated data (${buf.length - start} of ${count} bytes)`);
  return { shape, data: new Uint8Array(buf.buffer, buf.byteOffset + start, count) };
}

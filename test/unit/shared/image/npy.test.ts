import { decodeNpyU8, encodeNpyU8 } from '../../../../shared/image/npy';

describe('npy', () => {
  it('round-trips shape and bytes with a 64-byte aligned header', () => {
    const data = Uint8Array.from({ length: 2 * 3 * 4 * 3 }, (_, i) => i % 256);
    const buf = encodeNpyU8([2, 3, 4, 3], data);
    const headerLen = buf.readUInt16LE(8);
    expect((10 + headerLen) % 64).toBe(0);
    expect(buf.toString('latin1', 10, 10 + headerLen)).toContain("'shape': (2, 3, 4, 3)");
    const back = decodeNpyU8(buf);
    expect(back.shape).toEqual([2, 3, 4, 3]);
    expect(Array.from(back.data)).toEqual(Array.from(data));
  });

  it('refuses a shape that does not match the data, and truncated files', () => {
    expect(() => encodeNpyU8([2, 2], new Uint8Array(3))).toThrow(/needs 4 bytes/);
    const buf = encodeNpyU8([4], new Uint8Array(4));
    expect(() => decodeNpyU8(buf.subarray(0, buf.length - 1))).toThrow(/truncated/);
    expect(() => decodeNpyU8(Buffer.from('not npy at all'))).toThrow(/not a .npy/);
  });
});

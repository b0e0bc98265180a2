/**
 * The digests S3 verifies on upload: Content-MD5, and the x-amz-checksum-* algorithms (CRC32,
 * CRC32C, CRC64NVME, SHA-1, SHA-256), each updated chunk by chunk as the body streams to disk.
 * Values are base64 of the big-endian digest, as S3 sends and expects them.
 */
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';

export const CHECKSUM_ALGORITHMS = ['crc32', 'crc32c', 'crc64nvme', 'sha1', 'sha256'] as const;
export type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number];

export interface Digest {
  update(chunk: Buffer): void;
  /** Base64 of the digest. */
  digest(): string;
}

function reflectedCrc32Table(reversedPolynomial: number): Uint32Array {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n += 1) {
    let c = n;
    for (let k = 0; k < 8; k += 1) c = c & 1 ? (c >>> 1) ^ reversedPolynomial : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
}

const CRC32C_TABLE = reflectedCrc32Table(0x82f63b78);

class Crc32Digest implements Digest {
  private crc = 0xffffffff;
  constructor(private readonly table: Uint32Array) {}

  update(chunk: Buffer): void {
    let c = this.crc;
    const t = this.table;
    for (let i = 0; i < chunk.length; i += 1) c = t[(c ^ chunk[i]!) & 0xff]! ^ (c >>> 8);
    this.crc = c;
  }

  digest(): string {
    const out = Buffer.alloc(4);
    out.writeUInt32BE((this.crc ^ 0xffffffff) >>> 0);
    return out.toString('base64');
  }
}

/** CRC-64/NVME (reflected polynomial 0x9a6c9329ac4bc9b5) on two 32-bit halves: no BigInt per byte. */
const CRC64_LO = new Uint32Array(256);
const CRC64_HI = new Uint32Array(256);
for (let n = 0; n < 256; n += 1) {
  let lo = n;
  let hi = 0;
  for (let k = 0; k < 8; k += 1) {
    const carry = lo & 1;
    lo = ((lo >>> 1) | ((hi & 1) << 31)) >>> 0;
    hi = hi >>> 1;
    if (carry) {
      lo = (lo ^ 0xac4bc9b5) >>> 0;
      hi = (hi ^ 0x9a6c9329) >>> 0;
    }
  }
  CRC64_LO[n] = lo;
  CRC64_HI[n] = hi;
}

class Crc64NvmeDigest implements Digest {
  private lo = 0xffffffff;
  private hi = 0xffffffff;

  update(chunk: Buffer): void {
    let lo = this.lo;
    let hi = this.hi;
    for (let i = 0; i < chunk.length; i += 1) {
      const idx = (lo ^ chunk[i]!) & 0xff;
      lo = (((lo >>> 8) | (hi << 24)) ^ CRC64_LO[idx]!) >>> 0;
      hi = ((hi >>> 8) ^ CRC64_HI[idx]!) >>> 0;
    }
    this.lo = lo;
    this.hi = hi;
  }

  digest(): string {
    const out = Buffer.alloc(8);
    out.writeUInt32BE((this.hi ^ 0xffffffff) >>> 0, 0);
    out.writeUInt32BE((this.lo ^ 0xffffffff) >>> 0, 4);
    return out.toString('base64');
  }
}

/** zlib's native CRC-32 (Node.js >= 20.15, as package.json requires), several times faster than the table loop. */
class ZlibCrc32Digest implements Digest {
  private crc = 0;
  update(chunk: Buffer): void {
    this.crc = crc32(chunk, this.crc);
  }

  digest(): string {
    const out = Buffer.alloc(4);
    out.writeUInt32BE(this.crc >>> 0);
    return out.toString('base64');
  }
}

class HashDigest implements Digest {
  private readonly hash;
  constructor(algorithm: string) {
    this.hash = createHash(algorithm);
  }

  update(chunk: Buffer): void {
    this.hash.update(chunk);
  }

  digest(): string {
    return this.hash.digest('base64');
  }
}

export function createDigest(algorithm: ChecksumAlgorithm | 'md5'): Digest {
  switch (algorithm) {
    case 'crc32':
      return new ZlibCrc32Digest();
    case 'crc32c':
      return new Crc32Digest(CRC32C_TABLE);
    case 'crc64nvme':
      return new Crc64NvmeDigest();
    case 'sha1':
      return new HashDigest('sha1');
    case 'sha256':
      return new HashDigest('sha256');
    case 'md5':
      return new HashDigest('md5');
  }
}

export function isChecksumAlgorithm(name: string): name is ChecksumAlgorithm {
  return (CHECKSUM_ALGORITHMS as readonly string[]).includes(name);
}

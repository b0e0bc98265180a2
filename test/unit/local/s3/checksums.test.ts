import { createHash } from 'node:crypto';
import { CHECKSUM_ALGORITHMS, createDigest } from '../../../../local/s3/checksums';

const hex = (b64: string) => Buffer.from(b64, 'base64').toString('hex');

describe('createDigest', () => {
  // The catalogued check values of each CRC over "123456789".
  it.each([
    ['crc32', 'cbf43926'],
    ['crc32c', 'e3069283'],
    ['crc64nvme', 'ae8b14860a799888'],
  ] as const)('%s matches its published check value', (algorithm, check) => {
    const d = createDigest(algorithm);
    d.update(Buffer.from('123456789'));
    expect(hex(d.digest())).toBe(check);
  });

  it.each(CHECKSUM_ALGORITHMS.map((a) => [a]))('%s gives the same digest whatever the chunking', (algorithm) => {
    const data = Buffer.from(Array.from({ length: 10_000 }, (_, i) => (i * 7919) % 256));
    const whole = createDigest(algorithm);
    whole.update(data);
    const pieces = createDigest(algorithm);
    for (let at = 0; at < data.length; at += 333) pieces.update(data.subarray(at, at + 333));
    expect(pieces.digest()).toBe(whole.digest());
  });

  it('sha256 and sha1 are the standard hashes, base64', () => {
    for (const algorithm of ['sha1', 'sha256'] as const) {
      const d = createDigest(algorithm);
      d.update(Buffer.from('abc'));
      expect(d.digest()).toBe(createHash(algorithm).update('abc').digest('base64'));
    }
  });
});

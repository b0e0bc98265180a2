/** Helpers shared by tests that check the on-disk structures against a model. */

/** A deterministic generator (mulberry32), so a failure can be replayed. */
export function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Records in an append-log file (frames: u32 length, u32 CRC, payload). */
export function frames(bytes: Buffer): number {
  let n = 0;
  for (let at = 0; at + 8 <= bytes.length; at += 8 + bytes.readUInt32LE(at)) n += 1;
  return n;
}

/** The S3 server's sorted key set against a plain sorted array, including changes during a walk. */
import { compareKeys } from '../../../../local/s3/key-order';
import { SortedKeys } from '../../../../local/s3/sorted-keys';
import { random } from '../../../support/seeded';

const ALPHABET = ['a', 'b', '/', '0', 'é', '\uffff', '😀']; // BMP above surrogates and a surrogate pair

function keyOf(rand: () => number): string {
  let k = '';
  const n = 1 + Math.floor(rand() * 6);
  for (let i = 0; i < n; i += 1) k += ALPHABET[Math.floor(rand() * ALPHABET.length)];
  return k;
}

describe('SortedKeys', () => {
  it('matches a sorted array through random adds and deletes, across chunk splits', () => {
    const rand = random(17);
    const keys = new SortedKeys();
    const reference = new Set<string>();
    for (let step = 0; step < 30_000; step += 1) {
      const key = keyOf(rand);
      if (rand() < 0.65) {
        expect(keys.add(key)).toBe(!reference.has(key));
        reference.add(key);
      } else {
        expect(keys.delete(key)).toBe(reference.has(key));
        reference.delete(key);
      }
    }
    const sorted = [...reference].sort(compareKeys);
    expect(keys.size).toBe(sorted.length);
    expect(sorted.length).toBeGreaterThan(3000); // several chunks
    expect([...keys.from('')]).toEqual(sorted);
    for (let i = 0; i < 200; i += 1) {
      const start = keyOf(rand);
      const inclusive = sorted.filter((k) => compareKeys(k, start) >= 0);
      expect([...keys.from(start)].slice(0, 50)).toEqual(inclusive.slice(0, 50));
      expect([...keys.from(start, true)].slice(0, 50)).toEqual(inclusive.filter((k) => k !== start).slice(0, 50));
    }
    expect([...SortedKeys.of([...sorted].reverse().concat(sorted)).from('')]).toEqual(sorted);
  });

  it('walks on correctly while keys are added and removed under it', () => {
    const keys = SortedKeys.of(Array.from({ length: 5000 }, (_, i) => `k/${String(i).padStart(5, '0')}`));
    const seen: string[] = [];
    let added = 0;
    for (const key of keys.from('k/')) {
      seen.push(key);
      const i = Number(key.slice(2));
      if (i % 7 === 0) keys.delete(`k/${String(i + 1).padStart(5, '0')}`); // just ahead: never seen
      if (i % 11 === 0) keys.delete(`k/${String(i - 3).padStart(5, '0')}`); // behind: already seen
      if (i % 13 === 0) {
        keys.add(`k/${String(i).padStart(5, '0')}x`); // just ahead: seen next
        added += 1;
      }
      for (let j = 0; j < 3; j += 1) keys.add(`a/${seen.length}-${j}`); // before the walk: split chunks behind it
    }
    expect(seen).toEqual([...seen].sort(compareKeys));
    expect(new Set(seen).size).toBe(seen.length);
    const skipped = Array.from({ length: 5000 }, (_, i) => i).filter((i) => i > 0 && (i - 1) % 7 === 0);
    expect(seen.filter((k) => !k.endsWith('x'))).toHaveLength(5000 - skipped.length);
    expect(seen.filter((k) => k.endsWith('x'))).toHaveLength(added);
  });
});

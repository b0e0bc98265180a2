import { compareKeys, lowerBound } from '../../../../local/s3/key-order';

const utf8Order = (a: string, b: string) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
const sign = (n: number) => Math.sign(n);

describe('compareKeys', () => {
  it('orders keys as their UTF-8 bytes, including astral characters against U+E000..U+FFFF', () => {
    const alphabet = ['a', 'Z', '/', ' ', 'é', '\u00ff', '\u0100', '\ud7ff', '\ue000', '\uffff', '😀', '𝄞', '\u0000', '~'];
    let seed = 7;
    const random = () => {
      seed = (seed * 48271) % 2147483647;
      return seed / 2147483647;
    };
    const keys = Array.from({ length: 400 }, () =>
      Array.from({ length: 1 + Math.floor(random() * 4) }, () => alphabet[Math.floor(random() * alphabet.length)]).join(''),
    );
    for (const a of keys) for (const b of keys.slice(0, 60)) expect([a, b, sign(compareKeys(a, b))]).toEqual([a, b, sign(utf8Order(a, b))]);
  });
});

describe('lowerBound', () => {
  it('finds the first key not before the probe', () => {
    const keys = ['a', 'b/1', 'b/2', 'c'].sort(compareKeys);
    expect(lowerBound(keys, '')).toBe(0);
    expect(lowerBound(keys, 'b/')).toBe(1);
    expect(lowerBound(keys, 'b/2')).toBe(2);
    expect(lowerBound(keys, 'b/3')).toBe(3);
    expect(lowerBound(keys, 'z')).toBe(4);
  });
});

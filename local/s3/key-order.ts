/**
 * S3 orders keys by their UTF-8 bytes, which is code point order. JavaScript compares UTF-16 code
 * units, which differs only where a surrogate pair (U+10000 and up) meets U+E000..U+FFFF: shifting
 * surrogates above that range makes code unit comparison give code point order, without encoding.
 */
function codePointRank(unit: number): number {
  if (unit < 0xd800) return unit;
  return unit <= 0xdfff ? unit + 0x2000 : unit - 0x800;
}

/** Negative, zero or positive as `a` sorts before, with or after `b` in S3 key order. */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i += 1) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

/** The index of the first key in `sorted` (S3 key order) that is not before `from`. */
export function lowerBound(sorted: readonly string[], from: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareKeys(sorted[mid]!, from) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

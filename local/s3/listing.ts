/** One page of an S3 listing over keys in S3 order: prefix, delimiter roll-up, marker, page size. */
import { compareKeys } from './key-order';
import type { StoredObject } from './storage';

export interface ListOptions {
  prefix: string;
  delimiter: string;
  /** List keys after this one (a marker, start-after or decoded continuation token). */
  after: string;
  maxKeys: number;
}

export interface ListPage {
  contents: StoredObject[];
  commonPrefixes: string[];
  truncated: boolean;
  /** The last key or common prefix returned: where the next page starts. */
  last: string;
}

/**
 * One page of keys in S3 order (`keysFrom(start)`: the keys not before `start`), rolled up into
 * common prefixes by the delimiter. A page that ends on a common prefix continues after everything
 * under it, so no prefix is returned twice.
 */
export function listPage(keysFrom: (start: string) => Iterable<string>, lookup: (key: string) => StoredObject | undefined, options: ListOptions): ListPage {
  const { prefix, delimiter, after, maxKeys } = options;
  const rollUp = (key: string): string | undefined => {
    if (!delimiter) return undefined;
    const cut = key.indexOf(delimiter, prefix.length);
    return cut === -1 ? undefined : key.slice(0, cut + delimiter.length);
  };
  const start = after && compareKeys(after, prefix) > 0 ? after : prefix;
  const page: ListPage = { contents: [], commonPrefixes: [], truncated: false, last: '' };
  for (const key of keysFrom(start)) {
    if (!key.startsWith(prefix)) break;
    if (after && compareKeys(key, after) <= 0) continue;
    const common = rollUp(key);
    if (common !== undefined && (common === after || common === page.commonPrefixes.at(-1))) continue;
    if (page.contents.length + page.commonPrefixes.length >= maxKeys) {
      // S3 reports a listing asked for zero keys as complete.
      page.truncated = maxKeys > 0;
      break;
    }
    if (common !== undefined) {
      page.commonPrefixes.push(common);
      page.last = common;
      continue;
    }
    const meta = lookup(key);
    if (!meta) continue;
    page.contents.push(meta);
    page.last = key;
  }
  return page;
}

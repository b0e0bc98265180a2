import { compareKeys } from '../../../../local/s3/key-order';
import { listPage } from '../../../../local/s3/listing';
import { SortedKeys } from '../../../../local/s3/sorted-keys';
import type { StoredObject } from '../../../../local/s3/storage';

const KEYS = ['photos/2024/a.jpg', 'photos/2024/b.jpg', 'photos/2025/c.jpg', 'photos/readme.txt', 'photos/z/1', 'top.txt'].sort(compareKeys);
const meta = (key: string) => ({ key }) as StoredObject;
const sorted = SortedKeys.of(KEYS);
const keysFrom = (start: string) => sorted.from(start);

/** Every page of a listing, as a client pages with the last key or prefix returned. */
function all(prefix: string, delimiter: string, maxKeys: number) {
  const keys: string[] = [];
  const prefixes: string[] = [];
  let after = '';
  for (let guard = 0; guard < 100; guard += 1) {
    const page = listPage(keysFrom, meta, { prefix, delimiter, after, maxKeys });
    keys.push(...page.contents.map((c) => c.key));
    prefixes.push(...page.commonPrefixes);
    if (!page.truncated) return { keys, prefixes };
    after = page.last;
  }
  throw new Error('listing never ended');
}

describe('listPage', () => {
  it.each([1, 2, 3, 1000])('pages a delimited listing %i at a time without repeating a common prefix', (maxKeys) => {
    expect(all('photos/', '/', maxKeys)).toEqual({ keys: ['photos/readme.txt'], prefixes: ['photos/2024/', 'photos/2025/', 'photos/z/'] });
    expect(all('', '/', maxKeys)).toEqual({ keys: ['top.txt'], prefixes: ['photos/'] });
  });

  it('lists every key under a prefix without a delimiter', () => {
    expect(all('photos/2024/', '', 1).keys).toEqual(['photos/2024/a.jpg', 'photos/2024/b.jpg']);
  });

  it('reports a listing asked for zero keys as complete', () => {
    expect(listPage(keysFrom, meta, { prefix: '', delimiter: '', after: '', maxKeys: 0 })).toMatchObject({ contents: [], truncated: false });
  });
});

import { parseCsv } from '../../../cli/csv';

describe('parseCsv', () => {
  it('reads quoted fields with commas, quotes and newlines, and CRLF line ends', () => {
    expect(parseCsv('key,label\r\n"a, b.png","say ""hi"""\r\nc.png,cat\n"multi\nline.png",dog\n\n')).toEqual([
      ['key', 'label'],
      ['a, b.png', 'say "hi"'],
      ['c.png', 'cat'],
      ['multi\nline.png', 'dog'],
    ]);
  });

  it('rejects an unterminated quote', () => {
    expect(() => parseCsv('"open,label\n')).toThrow(/unterminated/);
  });
});

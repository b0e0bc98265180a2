import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { AwsChunkedDecoder } from '../../../../local/s3/chunked';

async function decode(encoded: Buffer, pieceSize: number): Promise<{ body: Buffer; trailers: Record<string, string> }> {
  const decoder = new AwsChunkedDecoder();
  const out: Buffer[] = [];
  const pieces = [];
  for (let at = 0; at < encoded.length; at += pieceSize) pieces.push(encoded.subarray(at, at + pieceSize));
  const sink = new Writable({
    write: (c: Buffer, _e, cb) => {
      out.push(c);
      cb();
    },
  });
  await pipeline(Readable.from(pieces), decoder, sink);
  return { body: Buffer.concat(out), trailers: decoder.trailers };
}

const signed = Buffer.from(
  '5;chunk-signature=aaaa\r\nhello\r\n6;chunk-signature=bbbb\r\n world\r\n0;chunk-signature=cccc\r\nx-amz-checksum-crc32:DUoRhQ==\r\nx-amz-trailer-signature:dddd\r\n\r\n',
);

describe('AwsChunkedDecoder', () => {
  it.each([1, 2, 7, 1000])('decodes chunks and trailers split into %i-byte pieces', async (pieceSize) => {
    const { body, trailers } = await decode(signed, pieceSize);
    expect(body.toString()).toBe('hello world');
    expect(trailers['x-amz-checksum-crc32']).toBe('DUoRhQ==');
  });

  it('decodes unsigned chunks without trailers', async () => {
    expect((await decode(Buffer.from('3\r\nabc\r\n0\r\n\r\n'), 4)).body.toString()).toBe('abc');
  });

  it('refuses a body that ends before its final chunk, or a chunk longer than its size', async () => {
    await expect(decode(Buffer.from('5\r\nhel'), 100)).rejects.toMatchObject({ code: 'IncompleteBody' });
    await expect(decode(Buffer.from('2\r\nabc\r\n0\r\n\r\n'), 100)).rejects.toMatchObject({ code: 'InvalidRequest' });
    await expect(decode(Buffer.from('zz\r\n'), 100)).rejects.toMatchObject({ code: 'InvalidRequest' });
  });
});

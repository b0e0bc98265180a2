/**
 * Decodes an `aws-chunked` request body as it streams: `<hex size>[;chunk-signature=...]\r\n`,
 * the data, `\r\n`, ... a zero-size chunk, then optional trailing headers (for example
 * `x-amz-checksum-crc32:...`) and a blank line. Signatures are not checked (any credentials work).
 */
import { Transform, type TransformCallback } from 'node:stream';
import { S3Error } from './errors';

const MAX_LINE = 64 * 1024;

export class AwsChunkedDecoder extends Transform {
  /** Trailing headers, lower-cased names; complete once the stream has ended. */
  readonly trailers: Record<string, string> = {};
  private line = Buffer.alloc(0);
  private remaining = 0;
  private state: 'size' | 'data' | 'data-end' | 'trailers' | 'done' = 'size';

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.consume(chunk);
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    // A final chunk without its closing blank line is accepted (some clients omit it without trailers).
    if (this.state === 'done' || (this.state === 'trailers' && this.line.length === 0)) callback();
    else callback(new S3Error(400, 'IncompleteBody', 'The aws-chunked body ended before its final chunk'));
  }

  private consume(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.state === 'data') {
        const take = Math.min(this.remaining, chunk.length - at);
        this.push(chunk.subarray(at, at + take));
        at += take;
        this.remaining -= take;
        if (this.remaining === 0) this.state = 'data-end';
        continue;
      }
      if (this.state === 'done') return;
      const eol = chunk.indexOf(0x0a, at);
      if (eol === -1) {
        this.line = Buffer.concat([this.line, chunk.subarray(at)]);
        if (this.line.length > MAX_LINE) throw new S3Error(400, 'InvalidRequest', 'malformed aws-chunked body: line too long');
        return;
      }
      const text = Buffer.concat([this.line, chunk.subarray(at, eol)])
        .toString('latin1')
        .replace(/\r$/, '');
      this.line = Buffer.alloc(0);
      at = eol + 1;
      this.onLine(text);
    }
  }

  private onLine(text: string): void {
    switch (this.state) {
      case 'data-end':
        if (text !== '') throw new S3Error(400, 'InvalidRequest', 'malformed aws-chunked body: chunk longer than its size');
        this.state = 'size';
        return;
      case 'size': {
        const hex = text.split(';')[0]!.trim();
        if (!/^[0-9a-fA-F]{1,16}$/.test(hex)) throw new S3Error(400, 'InvalidRequest', 'malformed aws-chunked body: bad chunk size');
        this.remaining = parseInt(hex, 16);
        this.state = this.remaining === 0 ? 'trailers' : 'data';
        return;
      }
      case 'trailers': {
        if (text === '') {
          this.state = 'done';
          return;
        }
        const colon = text.indexOf(':');
        if (colon <= 0) throw new S3Error(400, 'InvalidRequest', 'malformed aws-chunked trailer');
        this.trailers[text.slice(0, colon).trim().toLowerCase()] = text.slice(colon + 1).trim();
        return;
      }
      default:
        return;
    }
  }
}

/**
 * Where the bytes of an object being written go while they arrive: a sink. `BodySink` keeps a small
 * object's bytes in memory (they go into its journal record, see storage.ts) and spills to a new data
 * file past the inline limit; `FileSink` writes a file (multipart parts). `finish` makes the bytes
 * durable, `discard` throws them away.
 */
import { createHash } from 'node:crypto';
import { open, rm, type FileHandle } from 'node:fs/promises';

/** Where a new object's bytes ended up: in memory, for its journal record, or in a durable data file. */
export type ObjectBytes = { inline: Buffer } | { dataFile: string };

/** Receives bytes; `finish` makes them durable and says where they are, `discard` throws them away. */
export interface Sink<T> {
  write(chunk: Buffer): Promise<void>;
  finish(): Promise<T>;
  discard(): Promise<void>;
}

/** Bytes written to a new file at `path`, fsynced by `finish`. */
export class FileSink implements Sink<void> {
  private closed = false;

  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
  ) {}

  static async create(path: string): Promise<FileSink> {
    return new FileSink(path, await open(path, 'w'));
  }

  async write(chunk: Buffer): Promise<void> {
    await this.handle.write(chunk);
  }

  async finish(): Promise<void> {
    try {
      await this.handle.datasync();
    } finally {
      await this.close();
    }
  }

  async discard(): Promise<void> {
    await this.close();
    await rm(this.path, { force: true });
  }

  private async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close();
  }
}

/**
 * A new object's bytes: kept in memory while they fit the inline limit (they go into the object's
 * journal record), written to a new data file from the first byte past it (what came before first).
 */
export class BodySink implements Sink<ObjectBytes> {
  private chunks: Buffer[] = [];
  private size = 0;
  private file: { dataFile: string; sink: FileSink } | undefined;

  constructor(
    private readonly inlineMaxBytes: number,
    private readonly newDataFile: () => { dataFile: string; path: string },
  ) {}

  async write(chunk: Buffer): Promise<void> {
    this.size += chunk.length;
    if (!this.file && this.size <= this.inlineMaxBytes) {
      this.chunks.push(chunk);
      return;
    }
    if (!this.file) {
      const { dataFile, path } = this.newDataFile();
      this.file = { dataFile, sink: await FileSink.create(path) };
      const held = this.chunks;
      this.chunks = [];
      for (const c of held) await this.file.sink.write(c);
    }
    await this.file.sink.write(chunk);
  }

  async finish(): Promise<ObjectBytes> {
    if (!this.file) return { inline: Buffer.concat(this.chunks, this.size) };
    await this.file.sink.finish();
    return { dataFile: this.file.dataFile };
  }

  async discard(): Promise<void> {
    this.chunks = [];
    await this.file?.sink.discard();
  }
}

/** Writes `chunks` into `sink` and finishes it: where they are, their size and hex MD5. Discards the sink on failure. */
export async function writeAll<T>(sink: Sink<T>, chunks: AsyncIterable<Buffer> | Iterable<Buffer>): Promise<{ size: number; md5: string; bytes: T }> {
  const md5 = createHash('md5');
  let size = 0;
  try {
    for await (const chunk of chunks) {
      md5.update(chunk);
      size += chunk.length;
      await sink.write(chunk);
    }
    const bytes = await sink.finish();
    return { size, md5: md5.digest('hex'), bytes };
  } catch (err) {
    await sink.discard();
    throw err;
  }
}

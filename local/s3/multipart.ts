/**
 * Multipart uploads: parts stream to disk under `.uploads/<uploadId>/`, completion validates the
 * part list as S3 does (ascending, uploaded, matching ETags, at least 5 MiB but the last) and
 * assembles them into one object through ObjectStorage.commit, under the request's conditions.
 * A completed upload leaves a small record so that a retried completion (a lost response) gets
 * the same answer instead of NoSuchUpload.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { S3Error, invalidArgument, malformedXml, noSuchUpload } from './errors';
import { compareKeys } from './key-order';
import { writeAll } from './sinks';
import { unquote, type ObjectAttributes, type ObjectStorage, type StoredObject, type WriteCondition } from './storage';

export const MIN_PART_BYTES = 5 * 1024 * 1024;
export const MAX_PART_NUMBER = 10_000;
/** How long a completed upload's record answers retried completions. */
const COMPLETED_RECORD_MS = 24 * 60 * 60 * 1000;

export interface Upload {
  uploadId: string;
  bucket: string;
  key: string;
  initiated: string;
  attributes: ObjectAttributes;
}

export interface Part {
  partNumber: number;
  etag: string;
  size: number;
  lastModified: string;
  dataFile: string;
}

interface CompletedRecord {
  bucket: string;
  key: string;
  etag: string;
  completedAt: string;
}

export class MultipartUploads {
  private readonly uploads = new Map<string, Upload>();
  private readonly completed = new Map<string, CompletedRecord>();
  private readonly root: string;

  private constructor(private readonly storage: ObjectStorage) {
    this.root = join(storage.dataDir, '.uploads');
  }

  static async open(storage: ObjectStorage): Promise<MultipartUploads> {
    const uploads = new MultipartUploads(storage);
    await uploads.load();
    return uploads;
  }

  async create(bucket: string, key: string, attributes: ObjectAttributes): Promise<Upload> {
    this.storage.bucket(bucket);
    const upload: Upload = { uploadId: randomUUID(), bucket, key, initiated: new Date().toISOString(), attributes };
    await mkdir(this.dir(upload.uploadId), { recursive: true });
    await writeFile(join(this.dir(upload.uploadId), 'upload.json'), JSON.stringify(upload));
    this.uploads.set(upload.uploadId, upload);
    return upload;
  }

  /** The upload, checked against the bucket and key of the request. */
  get(uploadId: string, bucket: string, key: string): Upload {
    const upload = this.uploads.get(uploadId);
    if (!upload || upload.bucket !== bucket || upload.key !== key) throw noSuchUpload();
    return upload;
  }

  /** A path for a part's data before it is registered with `addPart`. */
  partPath(upload: Upload): { dataFile: string; path: string } {
    const dataFile = `part-${randomUUID()}`;
    return { dataFile, path: join(this.dir(upload.uploadId), dataFile) };
  }

  /** Registers a written, fsynced part; a part number uploaded again replaces the earlier one. */
  async addPart(upload: Upload, partNumber: number, dataFile: string, size: number, md5Hex: string): Promise<Part> {
    checkPartNumber(partNumber);
    const dir = this.dir(upload.uploadId);
    const part: Part = { partNumber, etag: md5Hex, size, lastModified: new Date().toISOString(), dataFile };
    if (!this.uploads.has(upload.uploadId)) {
      await rm(join(dir, dataFile), { force: true });
      throw noSuchUpload();
    }
    const metaPath = join(dir, `part-${partNumber}.json`);
    const previous = await readPart(metaPath);
    await writeFile(`${metaPath}.${dataFile}.tmp`, JSON.stringify(part));
    await rename(`${metaPath}.${dataFile}.tmp`, metaPath);
    if (previous && previous.dataFile !== dataFile) await rm(join(dir, previous.dataFile), { force: true });
    return part;
  }

  async parts(upload: Upload): Promise<Part[]> {
    const dir = this.dir(upload.uploadId);
    const parts: Part[] = [];
    for (const f of await readdir(dir).catch(() => [] as string[])) {
      if (!/^part-\d+\.json$/.test(f)) continue;
      const part = await readPart(join(dir, f));
      if (part) parts.push(part);
    }
    return parts.sort((a, b) => a.partNumber - b.partNumber);
  }

  /** Uploads in progress in a bucket, ordered by key then initiation, as ListMultipartUploads returns them. */
  inProgress(bucket: string): Upload[] {
    return [...this.uploads.values()]
      .filter((u) => u.bucket === bucket)
      .sort((a, b) => compareKeys(a.key, b.key) || a.initiated.localeCompare(b.initiated) || a.uploadId.localeCompare(b.uploadId));
  }

  async abort(uploadId: string, bucket: string, key: string): Promise<void> {
    this.get(uploadId, bucket, key);
    this.uploads.delete(uploadId);
    await rm(this.dir(uploadId), { recursive: true, force: true });
  }

  async complete(
    uploadId: string,
    bucket: string,
    key: string,
    requested: Array<{ partNumber: number; etag: string }>,
    condition: WriteCondition,
  ): Promise<{ etag: string }> {
    const done = this.completed.get(uploadId);
    if (done && done.bucket === bucket && done.key === key) return { etag: done.etag };
    const upload = this.get(uploadId, bucket, key);
    if (requested.length === 0) throw malformedXml();
    const uploaded = new Map((await this.parts(upload)).map((p) => [p.partNumber, p]));
    // A part number listed more than once (a part re-sent while the first send was in flight) is
    // one part: the one uploaded last, which one of the listed ETags must name.
    const chosen: Part[] = [];
    for (const [i, r] of requested.entries()) {
      const previous = requested[i - 1];
      if (previous && r.partNumber < previous.partNumber) {
        throw new S3Error(400, 'InvalidPartOrder', 'The list of parts was not in ascending order. Parts must be ordered by part number.');
      }
      if (previous?.partNumber === r.partNumber) continue;
      const part = uploaded.get(r.partNumber);
      const listed = requested.filter((x) => x.partNumber === r.partNumber).map((x) => unquote(x.etag));
      if (!part || !listed.includes(part.etag)) {
        throw new S3Error(400, 'InvalidPart', `One or more of the specified parts could not be found or its ETag did not match (part ${r.partNumber}).`);
      }
      chosen.push(part);
    }
    for (const part of chosen.slice(0, -1)) {
      if (part.size < MIN_PART_BYTES)
        throw new S3Error(
          400,
          'EntityTooSmall',
          `Your proposed upload is smaller than the minimum allowed size (part ${part.partNumber}: ${part.size} bytes; every part but the last needs ${MIN_PART_BYTES}).`,
        );
    }
    const etag = `${createHash('md5')
      .update(Buffer.concat(chosen.map((p) => Buffer.from(p.etag, 'hex'))))
      .digest('hex')}-${chosen.length}`;
    const { size, bytes } = await writeAll(this.storage.newBody(bucket, key), this.partBytes(upload, chosen));
    await this.storage.commit(
      bucket,
      key,
      { ...bytes, size, etag, parts: chosen.map((p) => p.size) },
      upload.attributes,
      condition,
      'ObjectCreated:CompleteMultipartUpload',
    );
    const record: CompletedRecord = { bucket, key, etag, completedAt: new Date().toISOString() };
    this.completed.set(uploadId, record);
    this.uploads.delete(uploadId);
    const dir = this.dir(uploadId);
    await writeFile(join(dir, 'completed.json'), JSON.stringify(record));
    for (const f of await readdir(dir)) if (f !== 'completed.json') await rm(join(dir, f), { force: true });
    return { etag };
  }

  /** The chosen parts' bytes, in order. */
  private async *partBytes(upload: Upload, parts: Part[]): AsyncIterable<Buffer> {
    for (const part of parts) yield* createReadStream(join(this.dir(upload.uploadId), part.dataFile), { highWaterMark: 1024 * 1024 }) as AsyncIterable<Buffer>;
  }

  private dir(uploadId: string): string {
    if (!/^[0-9a-f-]{36}$/.test(uploadId)) throw noSuchUpload();
    return join(this.root, uploadId);
  }

  private async load(): Promise<void> {
    for (const id of await readdir(this.root).catch(() => [] as string[])) {
      const dir = join(this.root, id);
      try {
        const completed = JSON.parse(await readFile(join(dir, 'completed.json'), 'utf8')) as CompletedRecord;
        if (Date.now() - Date.parse(completed.completedAt) > COMPLETED_RECORD_MS) await rm(dir, { recursive: true, force: true });
        else this.completed.set(id, completed);
        continue;
      } catch {
        // not completed
      }
      try {
        const upload = JSON.parse(await readFile(join(dir, 'upload.json'), 'utf8')) as Upload;
        if (this.storage.hasBucket(upload.bucket)) {
          this.uploads.set(id, upload);
          continue;
        }
      } catch {
        // an upload whose creation was interrupted
      }
      await rm(dir, { recursive: true, force: true });
    }
  }
}

export function checkPartNumber(partNumber: number): void {
  if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > MAX_PART_NUMBER) {
    throw invalidArgument(`Part number must be an integer between 1 and ${MAX_PART_NUMBER}, inclusive`);
  }
}

async function readPart(path: string): Promise<Part | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as Part;
  } catch {
    return undefined;
  }
}

/** Byte offsets of part `partNumber` (1-based) of a multipart object. */
export function partRange(meta: StoredObject, partNumber: number): { start: number; end: number } | undefined {
  const parts = meta.parts ?? [meta.size];
  if (partNumber > parts.length) return undefined;
  const start = parts.slice(0, partNumber - 1).reduce((n, s) => n + s, 0);
  return { start, end: start + parts[partNumber - 1]! - 1 };
}

export const partCount = (meta: StoredObject) => meta.parts?.length;

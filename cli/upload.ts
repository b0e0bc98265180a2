/**
 * `upload <dir|file>`: puts image files into the images bucket of either deployment, keys being the
 * paths relative to the directory (under `--prefix`), several at a time, multipart for large files
 * (@aws-sdk/lib-storage), with progress on stderr. Non-image files are skipped and listed.
 */
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { basename, extname, join, relative, sep } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';

const IMAGE_TYPES: Record<string, string> = {
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.png': 'image/png',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
  '.avif': 'image/avif',
  '.tif': 'image/tiff',
  '.tiff': 'image/tiff',
  '.bmp': 'image/bmp',
  '.heic': 'image/heic',
};

export interface UploadTarget {
  bucket: string;
  /** An S3-compatible endpoint (the embedded stack's); undefined: AWS, with the default credential chain. */
  endpoint?: string;
  region?: string;
  prefix?: string;
  concurrency?: number;
}

export interface UploadResult {
  uploaded: number;
  bytes: number;
  skipped: string[];
  failed: Array<{ file: string; error: string }>;
}

/** An S3 client for the embedded stack's endpoint (any credentials) or, without one, AWS with the default credential chain. */
export function s3ClientFor(target: Pick<UploadTarget, 'endpoint' | 'region'>): S3Client {
  return new S3Client({
    ...(target.endpoint ? { endpoint: target.endpoint, forcePathStyle: true } : {}),
    region: target.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
    // The embedded stack takes any credentials; give it some when the environment has none.
    ...(target.endpoint && !process.env.AWS_ACCESS_KEY_ID && !process.env.AWS_PROFILE
      ? { credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }
      : {}),
  });
}

/** One file, streamed (multipart above 8 MiB). */
export async function uploadFile(client: S3Client, bucket: string, key: string, path: string, contentType: string): Promise<void> {
  await new Upload({
    client,
    params: { Bucket: bucket, Key: key, Body: createReadStream(path), ContentType: contentType },
    queueSize: 2,
    partSize: 8 * 1024 * 1024,
    leavePartsOnError: false,
  }).done();
}

async function* walk(dir: string): AsyncIterable<string> {
  for (const entry of (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* walk(path);
    else if (entry.isFile()) yield path;
  }
}

export async function uploadImages(source: string, target: UploadTarget, progress: (line: string) => void = () => {}): Promise<UploadResult> {
  const info = await stat(source).catch(() => undefined);
  if (!info) throw new Error(`${source}: no such file or directory`);
  const files: Array<{ path: string; key: string; size: number; type: string }> = [];
  const skipped: string[] = [];
  const prefix = target.prefix ? `${target.prefix.replace(/\/+$/, '')}/` : '';
  const paths = info.isDirectory()
    ? walk(source)
    : (async function* () {
        yield source;
      })();
  for await (const path of paths) {
    const type = IMAGE_TYPES[extname(path).toLowerCase()];
    if (!type) {
      skipped.push(path);
      continue;
    }
    const rel = info.isDirectory() ? relative(source, path).split(sep).join('/') : basename(path);
    files.push({ path, key: `${prefix}${rel}`, size: (await stat(path)).size, type });
  }
  const client = s3ClientFor(target);
  const total = files.reduce((n, f) => n + f.size, 0);
  const result: UploadResult = { uploaded: 0, bytes: 0, skipped, failed: [] };
  let next = 0;
  let lastReport = 0;
  const report = (force = false) => {
    if (!force && Date.now() - lastReport < 500) return;
    lastReport = Date.now();
    progress(
      `uploaded ${result.uploaded}/${files.length} files, ${(result.bytes / 1048576).toFixed(1)}/${(total / 1048576).toFixed(1)} MiB${result.failed.length ? `, ${result.failed.length} failed` : ''}`,
    );
  };
  const worker = async () => {
    for (;;) {
      const file = files[next];
      next += 1;
      if (!file) return;
      try {
        await uploadFile(client, target.bucket, file.key, file.path, file.type);
        result.uploaded += 1;
        result.bytes += file.size;
      } catch (err) {
        result.failed.push({ file: file.path, error: (err as Error).message });
      }
      report();
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, target.concurrency ?? 4) }, worker));
  } finally {
    client.destroy();
  }
  report(true);
  return result;
}

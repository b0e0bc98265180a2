/**
 * Parity: the trainer's exported ONNX encoder, run by onnxruntime-node on sharp-preprocessed input
 * exactly as the embed path does, matches PyTorch on the same pixels (cosine >= 0.9999).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { S3Client } from '@aws-sdk/client-s3';
import { OnnxEncoderFactory } from '../../shared/adapters/onnx-encoder';
import { S3ObjectStore } from '../../shared/adapters/s3-object-store';
import { canonicalize, decodeImage } from '../../shared/image/decode';
import { decodeNpyU8, encodeNpyU8 } from '../../shared/image/npy';
import { toModelInput } from '../../shared/image/tensor';
import { ModelRegistry } from '../../shared/model-registry';
import { LocalS3Server } from '../../local/s3-server';
import { trainerEnv } from '../../local/trainer-launcher';
import { loadFashionMnist, toPng } from '../../scripts/fashion-mnist';
import { gradientImage, solidPng } from '../support/images';

const run = promisify(execFile);
const repoRoot = resolve(__dirname, '../..');
const python = resolve(repoRoot, '.venv/bin/python');

/** A .npy of float32 written by NumPy: parse the header, return the values. */
function readNpyF32(path: string): { shape: number[]; data: Float32Array } {
  const buf = readFileSync(path);
  const headerLen = buf.readUInt16LE(8);
  const header = buf.toString('latin1', 10, 10 + headerLen);
  if (!header.includes("'<f4'")) throw new Error(`expected float32 npy, got ${header}`);
  const shape = /'shape': \(([^)]*)\)/
    .exec(header)![1]!
    .split(',')
    .filter((s) => s.trim())
    .map(Number);
  const start = 10 + headerLen;
  return { shape, data: new Float32Array(buf.buffer.slice(buf.byteOffset + start, buf.byteOffset + buf.length)) };
}

describe('ONNX encoder parity (onnxruntime-node vs PyTorch)', () => {
  let server: LocalS3Server;
  let client: S3Client;

  beforeAll(async () => {
    server = await LocalS3Server.start({ dataDir: mkdtempSync(join(tmpdir(), 'parity-')), host: '127.0.0.1', port: 0, buckets: ['images', 'artifacts'] });
    client = new S3Client({ endpoint: server.endpoint, forcePathStyle: true, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
    await run(python, ['-m', 'pipeline_trainer', 'init', '--seed', '7'], { cwd: repoRoot, env: trainerEnv({ repoRoot, s3Endpoint: server.endpoint }) });
  }, 120_000);
  afterAll(async () => {
    client?.destroy();
    await server?.close();
  });

  it('matches on Fashion-MNIST and synthetic colour images, with cosine >= 0.9999', async () => {
    const models = new ModelRegistry(new S3ObjectStore(client), 'artifacts', new OnnxEncoderFactory());
    const serving = (await models.serving())!;
    const spec = serving.manifest.input;
    const fm = loadFashionMnist('t10k', 24);
    const images = [
      ...(await Promise.all(fm.images.map((px) => toPng(px)))),
      await gradientImage(97, 41, 'jpeg'),
      await gradientImage(33, 80, 'webp'),
      await solidPng(10, 10, [200, 30, 90], 128),
    ];
    const canonical = await Promise.all(images.map(async (bytes) => canonicalize(await decodeImage(bytes, { maxPixels: 1e8 }), spec)));
    const nodeVectors = await Promise.all(canonical.map((px) => serving.encoder.embedOne(toModelInput(px, spec))));

    const dir = mkdtempSync(join(tmpdir(), 'parity-npy-'));
    const pixels = encodeNpyU8([canonical.length, spec.height, spec.width, spec.channels], Buffer.concat(canonical));
    expect(decodeNpyU8(pixels).shape).toEqual([canonical.length, spec.height, spec.width, spec.channels]);
    writeFileSync(join(dir, 'pixels.npy'), pixels);
    await run(
      python,
      [join(repoRoot, 'test/support/torch_embed.py'), server.endpoint, serving.pointer.version, join(dir, 'pixels.npy'), join(dir, 'out.npy')],
      {
        cwd: repoRoot,
        env: trainerEnv({ repoRoot, s3Endpoint: server.endpoint }),
      },
    );
    const torch = readNpyF32(join(dir, 'out.npy'));
    const dim = serving.manifest.encoder.embeddingDim;
    expect(torch.shape).toEqual([canonical.length, dim]);
    const cosines = nodeVectors.map((v, i) => v.reduce((s, x, j) => s + x * torch.data[i * dim + j]!, 0));
    for (const c of cosines) expect(c).toBeGreaterThanOrEqual(0.9999);
  }, 120_000);
});

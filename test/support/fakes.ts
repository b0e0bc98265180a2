/** In-memory fakes of the ports, for use-case and handler tests. */
import { createHash } from 'node:crypto';
import type { Encoder, EncoderFactory } from '../../shared/ports/encoder';
import type { ObjectInfo, ObjectStore } from '../../shared/ports/object-store';
import type { Queue, QueueDepth } from '../../shared/ports/queue';
import type { ModelManifest } from '../../shared/schemas';
import { l2Normalize } from '../../shared/image/tensor';

export class InMemoryObjectStore implements ObjectStore {
  readonly buckets = new Map<string, Map<string, { body: Buffer; info: ObjectInfo }>>();
  private clock = 0;
  private readonly getHooks: Array<{ bucket: string; key: string; run: () => Promise<void> }> = [];

  /** Fault injection: runs `run` once, just before the next get of bucket/key returns. */
  beforeNextGet(bucket: string, key: string, run: () => Promise<void>): void {
    this.getHooks.push({ bucket, key, run });
  }

  private bucket(name: string) {
    let b = this.buckets.get(name);
    if (!b) {
      b = new Map();
      this.buckets.set(name, b);
    }
    return b;
  }

  async head(bucket: string, key: string) {
    return this.bucket(bucket).get(key)?.info;
  }

  async get(bucket: string, key: string) {
    const hook = this.getHooks.findIndex((h) => h.bucket === bucket && h.key === key);
    if (hook >= 0) await this.getHooks.splice(hook, 1)[0]!.run();
    const o = this.bucket(bucket).get(key);
    return o ? Buffer.from(o.body) : undefined;
  }

  async put(bucket: string, key: string, body: Buffer | string, contentType?: string) {
    const bytes = Buffer.from(body);
    this.clock += 1000;
    this.bucket(bucket).set(key, {
      body: bytes,
      info: { key, size: bytes.length, etag: createHash('md5').update(bytes).digest('hex'), contentType, lastModified: new Date(this.clock) },
    });
  }

  async putIf(bucket: string, key: string, body: Buffer | string, condition: { ifAbsent: true } | { ifMatch: string }, contentType?: string) {
    const existing = this.bucket(bucket).get(key);
    const ok = 'ifAbsent' in condition ? !existing : existing?.info.etag === condition.ifMatch;
    if (ok) await this.put(bucket, key, body, contentType);
    return ok;
  }

  async delete(bucket: string, key: string) {
    this.bucket(bucket).delete(key);
  }

  async deleteMany(bucket: string, keys: string[]) {
    for (const k of keys) this.bucket(bucket).delete(k);
  }

  async *list(bucket: string, prefix = '', startAfter = '') {
    const keys = [...this.bucket(bucket).keys()].filter((k) => k.startsWith(prefix) && k > startAfter).sort();
    for (const k of keys) yield this.bucket(bucket).get(k)!.info;
  }

  keys(bucket: string): string[] {
    return [...this.bucket(bucket).keys()].sort();
  }

  json(bucket: string, key: string): unknown {
    const o = this.bucket(bucket).get(key);
    return o ? JSON.parse(o.body.toString('utf8')) : undefined;
  }
}

export class InMemoryQueue implements Queue {
  readonly sent: string[] = [];

  async send(bodies: unknown[]) {
    for (const b of bodies) this.sent.push(typeof b === 'string' ? b : JSON.stringify(b));
  }

  async depth(): Promise<QueueDepth> {
    return { visible: this.sent.length, inFlight: 0 };
  }

  messages<T = unknown>(): T[] {
    return this.sent.map((s) => JSON.parse(s) as T);
  }
}

/** A deterministic stand-in encoder: per-channel sums (colour) plus a little spatial texture. */
export class FakeEncoderFactory implements EncoderFactory {
  created = 0;

  async create(manifest: ModelManifest): Promise<Encoder> {
    this.created += 1;
    const dim = manifest.encoder.embeddingDim;
    return {
      manifest,
      embed: async (inputs: Float32Array[]) =>
        inputs.map((x) => {
          const v = new Float32Array(dim).fill(0.01);
          const channels = manifest.input.channels;
          const plane = x.length / channels;
          for (let i = 0; i < x.length; i += 1) {
            v[Math.floor(i / plane) % dim]! += x[i]!;
            v[channels + (i % (dim - channels))]! += 0.1 * x[i]!;
          }
          return l2Normalize(v);
        }),
    };
  }
}

export function testManifest(version = 'v0', overrides: Partial<ModelManifest> = {}): ModelManifest {
  return {
    schemaVersion: 1,
    version,
    createdAt: '2026-11-28T00:00:00.000Z',
    parent: null,
    encoder: { file: 'encoder.onnx', format: 'onnx', inputName: 'pixels', outputName: 'embedding', embeddingDim: 8, normalized: false, architecture: {} },
    input: {
      height: 16,
      width: 16,
      channels: 3,
      layout: 'NCHW',
      channelOrder: 'RGB',
      resize: { fit: 'cover', kernel: 'lanczos3' },
      scale: 255,
      mean: [0, 0, 0],
      std: [1, 1, 1],
    },
    metrics: {},
    gate: { passed: true, reasons: [] },
    dataset: { snapshot: null, images: 0, labels: 0 },
    training: {},
    ...overrides,
  };
}

/** Publishes a fake model version (manifest + dummy ONNX bytes) and, optionally, points serving at it. */
export async function publishTestModel(store: InMemoryObjectStore, bucket: string, manifest: ModelManifest, pointer?: 'serving' | 'candidate') {
  await store.put(bucket, `models/${manifest.version}/manifest.json`, JSON.stringify(manifest));
  await store.put(bucket, `models/${manifest.version}/encoder.onnx`, Buffer.from('onnx'));
  if (pointer) {
    await store.put(
      bucket,
      `models/${pointer}.json`,
      JSON.stringify({ version: manifest.version, index: `emb-${manifest.version}`, updatedAt: '2026-11-28T00:00:00.000Z' }),
    );
  }
}

/**
 * Model versions in the artifacts bucket: the serving and candidate pointers, manifests, and
 * loaded encoders (one per version per container, reloaded only when a pointer moves).
 */
import type { EncoderFactory } from './ports/encoder';
import type { ObjectStore } from './ports/object-store';
import { ModelManifestSchema, ModelPointerSchema, type ModelManifest, type ModelPointer } from './schemas';
import { EncoderBatcher } from './encoder-batcher';

export const SERVING_POINTER_KEY = 'models/serving.json';
export const CANDIDATE_POINTER_KEY = 'models/candidate.json';

export interface LoadedModel {
  pointer: ModelPointer;
  manifest: ModelManifest;
  encoder: EncoderBatcher;
}

export interface ModelRegistryOptions {
  /** How long a pointer read is reused before S3 is asked again. */
  pointerTtlMs?: number;
  now?: () => number;
}

export class ModelRegistry {
  private readonly pointerCache = new Map<string, { at: number; value: Promise<ModelPointer | undefined> }>();
  private readonly models = new Map<string, Promise<{ manifest: ModelManifest; encoder: EncoderBatcher }>>();
  private readonly ttl: number;
  private readonly now: () => number;

  constructor(
    private readonly store: ObjectStore,
    private readonly bucket: string,
    private readonly encoders: EncoderFactory,
    options: ModelRegistryOptions = {},
  ) {
    this.ttl = options.pointerTtlMs ?? 2000;
    this.now = options.now ?? Date.now;
  }

  servingPointer(): Promise<ModelPointer | undefined> {
    return this.pointer(SERVING_POINTER_KEY);
  }

  candidatePointer(): Promise<ModelPointer | undefined> {
    return this.pointer(CANDIDATE_POINTER_KEY);
  }

  /** The serving model, loaded; undefined when no model has been published yet. */
  async serving(): Promise<LoadedModel | undefined> {
    const pointer = await this.servingPointer();
    return pointer ? { pointer, ...(await this.load(pointer.version)) } : undefined;
  }

  async candidate(): Promise<LoadedModel | undefined> {
    const pointer = await this.candidatePointer();
    return pointer ? { pointer, ...(await this.load(pointer.version)) } : undefined;
  }

  async manifest(version: string): Promise<ModelManifest | undefined> {
    const body = await this.store.get(this.bucket, `models/${version}/manifest.json`);
    return body ? ModelManifestSchema.parse(JSON.parse(body.toString('utf8'))) : undefined;
  }

  /** Every published manifest, oldest first. */
  async listManifests(): Promise<ModelManifest[]> {
    const versions: number[] = [];
    for await (const obj of this.store.list(this.bucket, 'models/')) {
      const m = /^models\/v(\d+)\/manifest\.json$/.exec(obj.key);
      if (m) versions.push(Number(m[1]));
    }
    versions.sort((a, b) => a - b);
    const manifests = await Promise.all(versions.map((v) => this.manifest(`v${v}`)));
    return manifests.filter((m): m is ModelManifest => m !== undefined);
  }

  private pointer(key: string): Promise<ModelPointer | undefined> {
    const cached = this.pointerCache.get(key);
    if (cached && this.now() - cached.at < this.ttl) return cached.value;
    const value = this.store.get(this.bucket, key).then((body) => (body ? ModelPointerSchema.parse(JSON.parse(body.toString('utf8'))) : undefined));
    this.pointerCache.set(key, { at: this.now(), value });
    value.catch(() => this.pointerCache.delete(key));
    return value;
  }

  private load(version: string): Promise<{ manifest: ModelManifest; encoder: EncoderBatcher }> {
    let loading = this.models.get(version);
    if (!loading) {
      loading = (async () => {
        const manifest = await this.manifest(version);
        if (!manifest) throw new Error(`model ${version}: manifest missing`);
        const onnx = await this.store.get(this.bucket, `models/${version}/${manifest.encoder.file}`);
        if (!onnx) throw new Error(`model ${version}: ${manifest.encoder.file} missing`);
        return { manifest, encoder: new EncoderBatcher(await this.encoders.create(manifest, onnx)) };
      })();
      this.models.set(version, loading);
      loading.catch(() => this.models.delete(version));
    }
    return loading;
  }
}

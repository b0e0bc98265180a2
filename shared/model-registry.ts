/**
 * Model versions in the artifacts bucket: `ModelCatalog` knows which version serves, which is a
 * candidate, and their manifests; `ModelRegistry` adds the loaded encoders.
 */
import type { EncoderFactory } from './ports/encoder';
import type { ObjectStore } from './ports/object-store';
import { artifactKeys } from './artifact-keys';
import { ModelManifestSchema, ModelPointerSchema, PseudoLabelsSchema, type ModelManifest, type ModelPointer } from './schemas';
import { EncoderBatcher } from './encoder-batcher';
import { parseJsonObject } from './json';

export const SERVING_POINTER_KEY = artifactKeys.servingPointer;
export const CANDIDATE_POINTER_KEY = artifactKeys.candidatePointer;

export interface PseudoLabel {
  label: string;
  confidence: number;
}

export interface LoadedModel {
  pointer: ModelPointer;
  manifest: ModelManifest;
  encoder: EncoderBatcher;
  /** The version's accepted pseudo-labels by image id (empty when it has none). */
  pseudoLabels: Map<string, PseudoLabel>;
}

export interface ModelRegistryOptions {
  /** How long a pointer read is reused before S3 is asked again. */
  pointerTtlMs?: number;
  now?: () => number;
}

/** A published version: its pointer and its manifest (everything needed to know how to embed, no weights). */
export interface ModelVersion {
  pointer: ModelPointer;
  manifest: ModelManifest;
}

/**
 * Which version serves, which is a candidate, and their manifests: pointers cached briefly,
 * manifests (immutable once published) for good. Loads no encoder; code that only needs a
 * model's input spec (augment) depends on this alone.
 */
export class ModelCatalog {
  private readonly pointerCache = new Map<string, { at: number; value: Promise<ModelPointer | undefined> }>();
  private readonly manifests = new Map<string, Promise<ModelManifest | undefined>>();
  private readonly ttl: number;
  protected readonly now: () => number;

  constructor(
    protected readonly store: ObjectStore,
    protected readonly bucket: string,
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

  /** The serving version and its manifest; undefined when no model has been published yet. */
  async servingVersion(): Promise<ModelVersion | undefined> {
    const pointer = await this.servingPointer();
    if (!pointer) return undefined;
    const manifest = await this.manifest(pointer.version);
    if (!manifest) throw new Error(`model ${pointer.version}: manifest missing`);
    return { pointer, manifest };
  }

  /** A version's manifest; read once per version (a published manifest never changes). */
  manifest(version: string): Promise<ModelManifest | undefined> {
    let reading = this.manifests.get(version);
    if (!reading) {
      reading = this.store.get(this.bucket, artifactKeys.manifest(version)).then((body) => (body ? parseJsonObject(body, ModelManifestSchema) : undefined));
      this.manifests.set(version, reading);
      // Not cached while absent or unreadable: it may be published in a moment.
      reading.then(
        (m) => m ?? this.manifests.delete(version),
        () => this.manifests.delete(version),
      );
    }
    return reading;
  }

  /** Every published manifest, oldest first. */
  async listManifests(): Promise<ModelManifest[]> {
    const versions: number[] = [];
    for await (const obj of this.store.list(this.bucket, artifactKeys.modelsPrefix)) {
      const m = /^models\/v(\d+)\/manifest\.json$/.exec(obj.key);
      if (m) versions.push(Number(m[1]));
    }
    versions.sort((a, b) => a - b);
    const manifests = await Promise.all(versions.map((v) => this.manifest(`v${v}`)));
    return manifests.filter((m): m is ModelManifest => m !== undefined);
  }

  /** Makes `pointer` the serving model; this process's readers see it at once. */
  async setServing(pointer: ModelPointer): Promise<void> {
    await this.writePointer(SERVING_POINTER_KEY, pointer);
  }

  /** Ends a rollout: removes the candidate pointer; this process's readers see it at once. */
  async clearCandidate(): Promise<void> {
    this.pointerCache.delete(CANDIDATE_POINTER_KEY);
    await this.store.delete(this.bucket, CANDIDATE_POINTER_KEY);
    this.pointerCache.delete(CANDIDATE_POINTER_KEY);
  }

  /**
   * Pointers are reused for the TTL only when they exist: "no model yet" is asked again on every
   * call, so a model published in the meantime (by the trainer, another process) is seen at once.
   */
  private pointer(key: string): Promise<ModelPointer | undefined> {
    const cached = this.pointerCache.get(key);
    if (cached && this.now() - cached.at < this.ttl) return cached.value;
    const value = this.store.get(this.bucket, key).then((body) => (body ? parseJsonObject(body, ModelPointerSchema) : undefined));
    this.pointerCache.set(key, { at: this.now(), value });
    value.then(
      (pointer) => {
        if (!pointer && this.pointerCache.get(key)?.value === value) this.pointerCache.delete(key);
      },
      () => this.pointerCache.delete(key),
    );
    return value;
  }

  private async writePointer(key: string, pointer: ModelPointer): Promise<void> {
    this.pointerCache.delete(key);
    await this.store.put(this.bucket, key, JSON.stringify(pointer), 'application/json');
    this.pointerCache.set(key, { at: this.now(), value: Promise.resolve(pointer) });
  }
}

/**
 * The catalog plus loaded encoders: one per version per container (the serving one and, during a
 * rollout, the candidate), with the version's pseudo-labels, reloaded only when a pointer moves.
 */
export class ModelRegistry extends ModelCatalog {
  private readonly models = new Map<string, Promise<Omit<LoadedModel, 'pointer'>>>();
  /** Versions last seen as serving and candidate: loaded models kept in memory. */
  private readonly active: Array<string | undefined> = [undefined, undefined];

  constructor(
    store: ObjectStore,
    bucket: string,
    private readonly encoders: EncoderFactory,
    options: ModelRegistryOptions = {},
  ) {
    super(store, bucket, options);
  }

  /** The serving model, loaded; undefined when no model has been published yet. */
  async serving(): Promise<LoadedModel | undefined> {
    const pointer = await this.servingPointer();
    this.active[0] = pointer?.version;
    return pointer ? { pointer, ...(await this.load(pointer.version)) } : undefined;
  }

  async candidate(): Promise<LoadedModel | undefined> {
    const pointer = await this.candidatePointer();
    this.active[1] = pointer?.version;
    return pointer ? { pointer, ...(await this.load(pointer.version)) } : undefined;
  }

  private load(version: string): Promise<Omit<LoadedModel, 'pointer'>> {
    let loading = this.models.get(version);
    if (!loading) {
      loading = (async () => {
        const manifest = await this.manifest(version);
        if (!manifest) throw new Error(`model ${version}: manifest missing`);
        const onnx = await this.store.get(this.bucket, artifactKeys.modelFile(version, manifest.encoder.file));
        if (!onnx) throw new Error(`model ${version}: ${manifest.encoder.file} missing`);
        const pseudoLabels = new Map<string, PseudoLabel>();
        const doc = await this.store.get(this.bucket, artifactKeys.pseudoLabels(version));
        if (doc) {
          for (const item of parseJsonObject(doc, PseudoLabelsSchema).items) {
            pseudoLabels.set(item.imageId, { label: item.label, confidence: item.confidence });
          }
        }
        return { manifest, encoder: new EncoderBatcher(await this.encoders.create(manifest, onnx)), pseudoLabels };
      })();
      this.models.set(version, loading);
      loading.catch(() => this.models.delete(version));
      this.evictExcept(version);
    }
    return loading;
  }

  /** Drops loaded versions that are neither serving, candidate, nor the one just requested. */
  private evictExcept(version: string): void {
    const keep = new Set([version, ...this.active]);
    for (const v of [...this.models.keys()]) if (!keep.has(v)) this.models.delete(v);
  }
}

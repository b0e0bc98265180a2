/** Nearest neighbours: by the stored vector of a known image, or by an uploaded image. */
import { ConflictError, NotFoundError, ServiceUnavailableError, UnprocessableImageError, BadRequestError } from '../errors';
import { imageIdForKey } from '../ids';
import { decodeToWorking, modelPixels } from '../derived-layout';
import { toModelInput } from '../image/tensor';
import type { VectorMatch } from '../ports/vector-index';
import { artifactKeys } from '../artifact-keys';
import type { PipelineSettings } from '../config';
import type { BucketsDeps, ModelsDeps } from './deps';

export interface QueryDeps extends BucketsDeps, ModelsDeps {
  settings: PipelineSettings;
}

export interface Neighbor {
  key: string;
  distance: number;
  label?: string;
  pseudoLabel?: string;
  confidence?: number;
}

export interface NeighborsResult {
  query: { key: string | null; modelVersion: string };
  neighbors: Neighbor[];
}

function toNeighbor(m: VectorMatch): Neighbor {
  const { key, label, pseudoLabel, confidence } = m.metadata;
  return {
    key,
    distance: Math.round(m.distance * 1e6) / 1e6,
    ...(label !== undefined ? { label } : {}),
    ...(pseudoLabel !== undefined ? { pseudoLabel } : {}),
    ...(confidence !== undefined ? { confidence } : {}),
  };
}

export async function neighborsOfKey(deps: QueryDeps, input: { key: string; k: number; label?: string }): Promise<NeighborsResult> {
  const pointer = await deps.models.servingPointer();
  if (!pointer) throw new ServiceUnavailableError('no_model', 'no encoder has been published yet');
  const id = imageIdForKey(input.key);
  const index = await deps.indexes.forReading(pointer);
  const [record] = index ? await index.get([id]) : [];
  if (!record) {
    if (!(await deps.store.head(deps.imagesBucket, input.key))) throw new NotFoundError(`no image with key "${input.key}"`);
    if (await deps.store.head(deps.artifactsBucket, artifactKeys.quarantine(id))) {
      throw new ConflictError('quarantined', `image "${input.key}" is quarantined; see GET /images?key=`);
    }
    throw new ConflictError('not_indexed', `image "${input.key}" is not indexed yet; try again shortly`);
  }
  const matches = await index!.query({ vector: record.vector, topK: input.k, label: input.label, excludeIds: [id] });
  return { query: { key: input.key, modelVersion: record.metadata.modelVersion }, neighbors: matches.map(toNeighbor) };
}

export async function neighborsOfImage(deps: QueryDeps, input: { bytes: Buffer; k: number; label?: string }): Promise<NeighborsResult> {
  const serving = await deps.models.serving();
  if (!serving) throw new ServiceUnavailableError('no_model', 'no encoder has been published yet');
  let pixels: Buffer;
  try {
    // The same working image augment stores: an image searched for with its own bytes finds itself at distance 0.
    const { working } = await decodeToWorking(input.bytes, deps.settings.maxImagePixels, deps.settings.derived);
    pixels = await modelPixels(working, serving.manifest.input);
  } catch (err) {
    if (err instanceof UnprocessableImageError) throw new BadRequestError(`cannot use this image: ${err.reason}`);
    throw err;
  }
  const vector = await serving.encoder.embedOne(toModelInput(pixels, serving.manifest.input));
  const index = await deps.indexes.forReading(serving.pointer);
  const matches = index ? await index.query({ vector, topK: input.k, label: input.label }) : [];
  return { query: { key: null, modelVersion: serving.pointer.version }, neighbors: matches.map(toNeighbor) };
}

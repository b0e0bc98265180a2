/**
 * embed: one derived image -> an L2-normalised vector in the serving model's index (and the
 * candidate's during a rollout), with metadata {key, modelVersion, label?}.
 *
 * Writes are upserts by image id, so duplicates are harmless. A message whose derived files are
 * gone (the image was deleted since) is acknowledged without writing. After writing, the meta is
 * read again: if the image was removed meanwhile the vector is deleted again, and if it was
 * re-uploaded meanwhile the new content is embedded, so a slow worker never leaves a stale vector.
 */
import { artifactKeys } from '../artifact-keys';
import { toRgb, type RgbImage } from '../image/decode';
import { decodeCanonical, modelPixels } from '../derived-layout';
import { decodeNpyU8 } from '../image/npy';
import { toModelInput } from '../image/tensor';
import type { LoadedModel } from '../model-registry';
import type { CanonicalHandoff } from '../canonical-handoff';
import { DerivedMetaSchema, LabelRecordSchema, type DerivedMeta, type EmbedMessage, type VectorMetadata } from '../schemas';
import { parseJsonObject } from '../json';
import type { ArtifactsDeps, ModelsDeps } from './deps';

export interface EmbedDeps extends ArtifactsDeps, ModelsDeps {
  /** The embedded stack: working images augment just stored, taken instead of reading canonical.png back. */
  handoff?: CanonicalHandoff;
}

export type EmbedOutcome = 'indexed' | 'stale';

export async function embedImage(deps: EmbedDeps, message: EmbedMessage): Promise<EmbedOutcome> {
  const serving = await deps.models.serving();
  if (!serving) throw new Error('no serving model has been published yet; retrying later');
  const candidate = await deps.models.candidate();
  let targets = candidate && candidate.pointer.version !== serving.pointer.version ? [serving, candidate] : [serving];
  if (message.versions) targets = targets.filter((t) => message.versions!.includes(t.pointer.version));
  if (targets.length === 0) return 'stale';

  let meta = await readMeta(deps, message);
  if (!meta) return 'stale';
  for (let attempt = 0; attempt < 5; attempt += 1) {
    await embedInto(deps, message, meta, targets);
    const after = await readMeta(deps, message);
    if (!after) {
      // Removed while this worker embedded: its write may have landed after the removal's delete.
      await Promise.all(targets.map(async (t) => (await deps.indexes.forReading(t.pointer))?.delete([message.imageId])));
      return 'stale';
    }
    if (after.etag === meta.etag && after.sequencer === meta.sequencer) return 'indexed';
    meta = after;
  }
  throw new Error(`${message.key} kept changing while it was embedded; retrying the message`);
}

async function readMeta(deps: EmbedDeps, message: EmbedMessage): Promise<DerivedMeta | undefined> {
  const body = await deps.store.get(deps.artifactsBucket, artifactKeys.derivedMeta(message.imageId));
  if (!body) return undefined;
  const meta = parseJsonObject(body, DerivedMetaSchema);
  return meta.key === message.key ? meta : undefined;
}

async function embedInto(deps: EmbedDeps, message: EmbedMessage, meta: DerivedMeta, targets: LoadedModel[]): Promise<void> {
  const canonical = await readCanonical(deps, message.imageId, meta);
  if (!canonical) return;
  const label = await readLabel(deps, message.imageId);

  await Promise.all(
    targets.map(async (target) => {
      const pixels = await modelPixels(canonical, target.manifest.input);
      const vector = await target.encoder.embedOne(toModelInput(pixels, target.manifest.input));
      const index = await deps.indexes.forWriting(target.pointer, target.manifest.encoder.embeddingDim);
      const pseudo = label ? undefined : target.pseudoLabels.get(message.imageId);
      const metadata: VectorMetadata = {
        key: message.key,
        modelVersion: target.pointer.version,
        ...(label ? { label } : {}),
        ...(pseudo ? { pseudoLabel: pseudo.label, confidence: pseudo.confidence } : {}),
      };
      await index.put([{ id: message.imageId, vector, metadata }]);
    }),
  );
}

/** The stored canonical image: layout 2's PNG, or (until it is migrated) layout 1's first array of views.npy. */
async function readCanonical(deps: EmbedDeps, imageId: string, meta: DerivedMeta): Promise<RgbImage | undefined> {
  if (meta.schemaVersion === 2) {
    const handed = deps.handoff?.take(imageId, meta.etag, meta.sequencer);
    if (handed) return handed;
    const png = await deps.store.get(deps.artifactsBucket, artifactKeys.derivedCanonical(imageId));
    return png ? decodeCanonical(png) : undefined;
  }
  const npy = await deps.store.get(deps.artifactsBucket, artifactKeys.derivedViewsV1(imageId));
  if (!npy) return undefined;
  const views = decodeNpyU8(npy);
  const [, height, width, channels] = views.shape as [number, number, number, number];
  const pixels = views.data.subarray(0, height * width * channels);
  return { width, height, rgb: toRgb(Buffer.from(pixels.buffer, pixels.byteOffset, pixels.byteLength), channels, width * height), format: 'npy' };
}

async function readLabel(deps: EmbedDeps, imageId: string): Promise<string | undefined> {
  const body = await deps.store.get(deps.artifactsBucket, artifactKeys.label(imageId));
  return body ? parseJsonObject(body, LabelRecordSchema).label : undefined;
}

import type { ModelManifest } from '../schemas';

/** A loaded encoder: turns preprocessed input tensors into L2-normalised embeddings. */
export interface Encoder {
  readonly manifest: ModelManifest;
  /** `inputs`: one Float32Array per image, laid out as the manifest's input spec (CHW). */
  embed(inputs: Float32Array[]): Promise<Float32Array[]>;
}

/** Builds an encoder from a manifest and the ONNX bytes. */
export interface EncoderFactory {
  create(manifest: ModelManifest, onnx: Uint8Array): Promise<Encoder>;
}

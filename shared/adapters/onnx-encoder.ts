/** Encoder over onnxruntime-node: batch inference on CPU, L2-normalised outputs. */
import * as ort from 'onnxruntime-node';
import type { Encoder, EncoderFactory } from '../ports/encoder';
import type { ModelManifest } from '../schemas';
import { l2Normalize } from '../image/tensor';

export interface OnnxEncoderOptions {
  /** Threads for one inference (default: onnxruntime's choice). */
  intraOpNumThreads?: number;
  /**
   * Let onnxruntime's worker threads spin between runs (its default). Off here: the embed worker
   * runs many small batches between other work, and spinning threads burned more CPU than the
   * inference itself (perf on the embedded stack: 21% of its CPU in onnxruntime's wait loop).
   */
  spinning?: boolean;
}

export class OnnxEncoder implements Encoder {
  private constructor(
    readonly manifest: ModelManifest,
    private readonly session: ort.InferenceSession,
  ) {}

  static async create(manifest: ModelManifest, onnx: Uint8Array, options: OnnxEncoderOptions = {}): Promise<OnnxEncoder> {
    const session = await ort.InferenceSession.create(onnx, {
      executionProviders: ['cpu'],
      graphOptimizationLevel: 'all',
      ...(options.intraOpNumThreads ? { intraOpNumThreads: options.intraOpNumThreads } : {}),
      extra: { session: { intra_op: { allow_spinning: options.spinning ? '1' : '0' }, inter_op: { allow_spinning: options.spinning ? '1' : '0' } } },
    });
    const { inputName, outputName } = manifest.encoder;
    if (!session.inputNames.includes(inputName) || !session.outputNames.includes(outputName)) {
      throw new Error(
        `model ${manifest.version}: ONNX has inputs [${session.inputNames}] and outputs [${session.outputNames}]; manifest names ${inputName} -> ${outputName}`,
      );
    }
    return new OnnxEncoder(manifest, session);
  }

  async embed(inputs: Float32Array[]): Promise<Float32Array[]> {
    if (inputs.length === 0) return [];
    const { channels, height, width } = this.manifest.input;
    const size = channels * height * width;
    const batch = new Float32Array(size * inputs.length);
    inputs.forEach((x, i) => {
      if (x.length !== size) throw new Error(`input ${i} has ${x.length} values, expected ${size}`);
      batch.set(x, i * size);
    });
    const feeds = { [this.manifest.encoder.inputName]: new ort.Tensor('float32', batch, [inputs.length, channels, height, width]) };
    const out = await this.session.run(feeds);
    const tensor = out[this.manifest.encoder.outputName];
    if (!tensor) throw new Error(`model ${this.manifest.version} produced no ${this.manifest.encoder.outputName}`);
    const dim = this.manifest.encoder.embeddingDim;
    const data = tensor.data as Float32Array;
    if (data.length !== dim * inputs.length) {
      throw new Error(`model ${this.manifest.version} returned ${data.length} values for ${inputs.length} x ${dim}`);
    }
    return inputs.map((_, i) => l2Normalize(data.subarray(i * dim, (i + 1) * dim)));
  }
}

export class OnnxEncoderFactory implements EncoderFactory {
  constructor(private readonly options: OnnxEncoderOptions = {}) {}

  create(manifest: ModelManifest, onnx: Uint8Array): Promise<Encoder> {
    return OnnxEncoder.create(manifest, onnx, this.options);
  }
}

/**
 * POST /models/import: bring your own encoder. The ONNX file (and optional PyTorch weights) is
 * uploaded to the artifacts bucket under `imports/<importId>/`; this validates it at once, here,
 * with onnxruntime-node (the runtime that will serve it), then starts an import job on the trainer
 * under the training lease. The job evaluates it against the serving model with the training gate,
 * publishes it as a new version and, when the gate passes, makes it the candidate: the rollout
 * re-embeds every image with it, blue/green, like a trained version.
 */
import * as ort from 'onnxruntime-node';
import { artifactKeys } from '../artifact-keys';
import { modelExceedsWorking } from '../derived-layout';
import { BadRequestError, NotFoundError } from '../errors';
import { TRAINER_ARCHS } from '../trainer-presets';
import type { InputSpec } from '../schemas';
import { startTraining, type TrainingDeps } from './training';
import type { PipelineSettings } from '../config';
import { nowOf } from '../clock';

export interface ImportInput {
  /** Key of the uploaded ONNX in the artifacts bucket, under imports/<importId>/. */
  source: string;
  height: number;
  width: number;
  mean?: number[];
  std?: number[];
  resize?: InputSpec['resize']['fit'];
  /** Key of a PyTorch state dict for `arch`, under the same imports/<importId>/. */
  weights?: string;
  arch?: string;
  maxMinutes?: number;
}

/** What the job reads: imports/<importId>/request.json. */
export interface ImportRequestRecord {
  importId: string;
  source: string;
  weights?: string;
  arch?: string;
  input: InputSpec;
  onnx: { inputName: string; outputName: string; embeddingDim: number; bytes: number };
  validation: ImportValidation;
  requestedAt: string;
}

export interface ImportValidation {
  inputName: string;
  outputName: string;
  channels: 1 | 3;
  embeddingDim: number;
  /** Largest difference between two runs on the same inputs (must be 0: deterministic). */
  repeatMaxAbsDiff: number;
  /** Cosine distance between the embeddings of two different test images (0 would mean a constant output). */
  testImagesDistance: number;
}

export interface ImportDeps extends Omit<TrainingDeps, 'policy'> {
  settings: PipelineSettings;
}

/** ONNX files larger than this are refused: the api function loads the file to validate it. */
export const IMPORT_MAX_ONNX_BYTES = 1024 * 1024 * 1024;
const IMPORT_KEY = /^imports\/([A-Za-z0-9][A-Za-z0-9._-]{0,127})\/[^/]+$/;

export function importIdOf(key: string, what: string): string {
  const m = IMPORT_KEY.exec(key);
  if (!m) throw new BadRequestError(`${what} must be a key under imports/<importId>/ in the artifacts bucket (upload it there first), got "${key}"`);
  return m[1]!;
}

export function inputSpecFor(input: ImportInput, channels: 1 | 3): InputSpec {
  const mean = input.mean ?? (channels === 3 ? [0, 0, 0] : [0]);
  const std = input.std ?? (channels === 3 ? [1, 1, 1] : [1]);
  for (const [name, values] of [
    ['mean', mean],
    ['std', std],
  ] as const) {
    if (values.length !== channels && values.length !== 1)
      throw new BadRequestError(`${name} has ${values.length} values; the model takes ${channels} channels`);
    if (values.some((v) => !Number.isFinite(v))) throw new BadRequestError(`${name} must be finite numbers`);
  }
  if (std.some((v) => v <= 0)) throw new BadRequestError('std values must be positive');
  return {
    height: input.height,
    width: input.width,
    channels,
    layout: 'NCHW',
    channelOrder: 'RGB',
    resize: { fit: input.resize ?? 'cover', kernel: 'lanczos3' },
    scale: 255,
    mean,
    std,
  };
}

/** Loads the ONNX in onnxruntime-node and checks everything serving it needs; throws BadRequestError naming the first problem. */
export async function validateEncoder(onnx: Uint8Array, input: Pick<ImportInput, 'height' | 'width'>): Promise<ImportValidation> {
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(onnx, { executionProviders: ['cpu'], graphOptimizationLevel: 'all' });
  } catch (err) {
    throw new BadRequestError(`onnxruntime cannot load the file: ${firstLine((err as Error).message)}`);
  }
  try {
    if (session.inputNames.length !== 1) {
      throw new BadRequestError(`an image encoder takes one input, this model takes ${session.inputNames.length}: [${session.inputNames.join(', ')}]`);
    }
    if (session.outputNames.length !== 1) {
      throw new BadRequestError(
        `an image encoder has one output (the embedding), this model has ${session.outputNames.length}: [${session.outputNames.join(', ')}]; export only the embedding`,
      );
    }
    const inputName = session.inputNames[0]!;
    const outputName = session.outputNames[0]!;
    const meta = session.inputMetadata[0];
    let channels: 1 | 3 = 3;
    if (meta?.isTensor) {
      if (meta.type !== 'float32') throw new BadRequestError(`the input "${inputName}" is ${meta.type}; an encoder here takes float32 pixels`);
      if (meta.shape.length > 0 && meta.shape.length !== 4) {
        throw new BadRequestError(`the input "${inputName}" has shape [${meta.shape.join(', ')}]; expected 4 dimensions [batch, channels, height, width]`);
      }
      const [, c, h, w] = meta.shape;
      if (c === 1 || c === 3) channels = c;
      else if (typeof c === 'number') throw new BadRequestError(`the input "${inputName}" has ${c} channels; expected 1 or 3 (NCHW)`);
      for (const [name, declared, want] of [
        ['height', h, input.height],
        ['width', w, input.width],
      ] as const) {
        if (typeof declared === 'number' && declared > 0 && declared !== want) {
          throw new BadRequestError(`the model's input ${name} is fixed at ${declared}, but --input-size says ${want}`);
        }
      }
    }
    const size = channels * input.height * input.width;
    const images = new Float32Array(2 * size);
    // Two different, deterministic test images (a smooth pattern and its negative), roughly normalised.
    for (let i = 0; i < size; i += 1) {
      const v = Math.sin(i * 0.37) * Math.cos(i * 0.011);
      images[i] = v;
      images[size + i] = -v * 0.8 + 0.1;
    }
    const run = async () => {
      let out: ort.InferenceSession.ReturnType;
      try {
        out = await session.run({ [inputName]: new ort.Tensor('float32', images.slice(), [2, channels, input.height, input.width]) });
      } catch (err) {
        throw new BadRequestError(
          `the model does not accept a batch of 2 images of ${channels}x${input.height}x${input.width}: ${firstLine((err as Error).message)}`,
        );
      }
      return out[outputName]!;
    };
    const first = await run();
    if (first.type !== 'float32') throw new BadRequestError(`the output "${outputName}" is ${first.type}; expected float32 embeddings`);
    if (first.dims.length !== 2 || first.dims[0] !== 2) {
      throw new BadRequestError(`the output "${outputName}" has shape [${first.dims.join(', ')}] for 2 images; expected a 2-D [batch, dimension] embedding`);
    }
    const dim = first.dims[1]!;
    if (dim < 2 || dim > 4096) throw new BadRequestError(`the embedding has ${dim} dimensions; between 2 and 4096 are supported`);
    const a = first.data as Float32Array;
    if (!a.every(Number.isFinite)) throw new BadRequestError('the model produced non-finite values (NaN or infinity) on test images');
    const second = (await run()).data as Float32Array;
    let repeatMaxAbsDiff = 0;
    for (let i = 0; i < a.length; i += 1) repeatMaxAbsDiff = Math.max(repeatMaxAbsDiff, Math.abs(a[i]! - second[i]!));
    if (repeatMaxAbsDiff > 1e-5) throw new BadRequestError(`the model is not deterministic: two runs on the same images differ by up to ${repeatMaxAbsDiff}`);
    const u = a.subarray(0, dim);
    const v = a.subarray(dim);
    const norm = (x: Float32Array) => Math.sqrt(x.reduce((s, t) => s + t * t, 0));
    if (norm(u) === 0 || norm(v) === 0) throw new BadRequestError('the model produced an all-zero embedding for a test image');
    const testImagesDistance = 1 - u.reduce((s, t, i) => s + t * v[i]!, 0) / (norm(u) * norm(v));
    return { inputName, outputName, channels, embeddingDim: dim, repeatMaxAbsDiff, testImagesDistance: Math.round(testImagesDistance * 1e6) / 1e6 };
  } finally {
    await session.release();
  }
}

export async function importModel(
  deps: ImportDeps,
  input: ImportInput,
): Promise<{ jobId: string; importId: string; version: null; validation: ImportValidation }> {
  const importId = importIdOf(input.source, 'source');
  if (input.weights && importIdOf(input.weights, 'weights') !== importId)
    throw new BadRequestError('weights must be uploaded under the same imports/<importId>/ as the ONNX');
  if (input.weights && !input.arch) throw new BadRequestError(`weights need their architecture: arch is one of ${TRAINER_ARCHS.join(', ')}`);
  if (input.arch && !(TRAINER_ARCHS as readonly string[]).includes(input.arch)) throw new BadRequestError(`arch must be one of ${TRAINER_ARCHS.join(', ')}`);
  if (input.arch && !input.weights) throw new BadRequestError('arch names the architecture of weights; give weights too (or neither)');
  const tooLarge = modelExceedsWorking(input, deps.settings.derived.workingSize);
  if (tooLarge) throw new BadRequestError(`cannot import: ${tooLarge}`);

  const head = await deps.store.head(deps.artifactsBucket, input.source);
  if (!head) throw new NotFoundError(`no object "${input.source}" in the artifacts bucket: upload the ONNX there first`);
  if (head.size > IMPORT_MAX_ONNX_BYTES) throw new BadRequestError(`the ONNX is ${head.size} bytes; at most ${IMPORT_MAX_ONNX_BYTES} can be imported`);
  if (input.weights && !(await deps.store.head(deps.artifactsBucket, input.weights))) {
    throw new NotFoundError(`no object "${input.weights}" in the artifacts bucket: upload the weights there first`);
  }
  const onnx = (await deps.store.get(deps.artifactsBucket, input.source))!;
  const validation = await validateEncoder(onnx, input);
  const spec = inputSpecFor(input, validation.channels);

  const record: ImportRequestRecord = {
    importId,
    source: input.source,
    ...(input.weights ? { weights: input.weights, arch: input.arch } : {}),
    input: spec,
    onnx: { inputName: validation.inputName, outputName: validation.outputName, embeddingDim: validation.embeddingDim, bytes: onnx.length },
    validation,
    requestedAt: nowOf(deps).toISOString(),
  };
  await deps.store.put(deps.artifactsBucket, artifactKeys.importFile(importId, 'request.json'), JSON.stringify(record), 'application/json');
  const { jobId } = await startTraining(
    { ...deps, policy: deps.settings.retrain, newJobId: deps.newJobId ?? (() => `import-${importId}-${Date.now().toString(36)}`) },
    { importId, reason: `import of ${input.source}`, maxMinutes: input.maxMinutes ?? 30 },
  );
  return { jobId, importId, version: null, validation };
}

function firstLine(message: string): string {
  const line = message.split('\n').find((l) => l.trim()) ?? message;
  return line.length > 300 ? `${line.slice(0, 297)}...` : line;
}

/** "224", "224x160" (height x width) or a number: the model's input size. */
export function parseInputSize(value: string | number): { height: number; width: number } {
  const text = String(value).trim();
  const m = /^(\d{1,4})(?:x(\d{1,4}))?$/i.exec(text);
  if (!m) throw new BadRequestError(`input size must be N or HxW (e.g. 224 or 224x160), got "${text}"`);
  const height = Number(m[1]);
  const width = Number(m[2] ?? m[1]);
  if (height < 8 || width < 8 || height > 1024 || width > 1024)
    throw new BadRequestError(`input size must be 8 to 1024 pixels per side, got ${height}x${width}`);
  return { height, width };
}

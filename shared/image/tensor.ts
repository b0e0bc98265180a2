/** HWC uint8 pixels -> the encoder's CHW float input, exactly as the manifest's input spec says. */
import type { InputSpec } from '../schemas';

export function toModelInput(hwc: Uint8Array, spec: InputSpec): Float32Array {
  const { height, width, channels } = spec;
  const plane = height * width;
  if (hwc.length !== plane * channels) {
    throw new Error(`pixels have ${hwc.length} values; input spec wants ${height}x${width}x${channels}`);
  }
  const out = new Float32Array(plane * channels);
  for (let c = 0; c < channels; c += 1) {
    const mean = spec.mean[c] ?? spec.mean[0]!;
    const std = spec.std[c] ?? spec.std[0]!;
    const scale = 1 / (spec.scale * std);
    const shift = mean / std;
    const base = c * plane;
    for (let p = 0; p < plane; p += 1) out[base + p] = hwc[p * channels + c]! * scale - shift;
  }
  return out;
}

export function l2Normalize(v: Float32Array): Float32Array {
  let sum = 0;
  for (let i = 0; i < v.length; i += 1) sum += v[i]! * v[i]!;
  const norm = Math.sqrt(sum);
  if (!(norm > 0) || !Number.isFinite(norm)) throw new Error('embedding has zero or non-finite norm');
  const out = new Float32Array(v.length);
  for (let i = 0; i < v.length; i += 1) out[i] = v[i]! / norm;
  return out;
}

/**
 * The K augmented views written next to each canonical image (SimCLR's augmentation family):
 * a random resized crop taken from the full-resolution original, horizontal flip, colour jitter,
 * grayscale and blur. The parameters are drawn from a generator seeded by the image id and ETag,
 * so a retried or duplicated event writes exactly the same views.
 */
import { createHash } from 'node:crypto';
import sharp from 'sharp';
import { toRgb, type RgbImage } from './decode';

export interface ViewParams {
  crop: { left: number; top: number; width: number; height: number };
  flip: boolean;
  jitter?: { brightness: number; contrast: number; saturation: number; hueDegrees: number };
  grayscale: boolean;
  blurSigma?: number;
}

/** mulberry32: a small, fast, seedable generator; uniform in [0, 1). */
export function seededRandom(seed: string): () => number {
  let state = createHash('sha256').update(seed).digest().readUInt32LE(0);
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const uniform = (rng: () => number, lo: number, hi: number) => lo + (hi - lo) * rng();

export function sampleViewParams(rng: () => number, width: number, height: number): ViewParams {
  const area = width * height;
  let crop = { left: 0, top: 0, width, height };
  for (let attempt = 0; attempt < 10; attempt += 1) {
    const target = area * uniform(rng, 0.2, 1.0);
    const ratio = Math.exp(uniform(rng, Math.log(3 / 4), Math.log(4 / 3)));
    const w = Math.round(Math.sqrt(target * ratio));
    const h = Math.round(Math.sqrt(target / ratio));
    if (w >= 1 && h >= 1 && w <= width && h <= height) {
      crop = { left: Math.floor(rng() * (width - w + 1)), top: Math.floor(rng() * (height - h + 1)), width: w, height: h };
      break;
    }
  }
  const flip = rng() < 0.5;
  const jitter =
    rng() < 0.8
      ? {
          brightness: uniform(rng, 0.6, 1.4),
          contrast: uniform(rng, 0.6, 1.4),
          saturation: uniform(rng, 0.6, 1.4),
          hueDegrees: uniform(rng, -36, 36),
        }
      : undefined;
  const grayscale = rng() < 0.2;
  const blurSigma = rng() < 0.5 ? uniform(rng, 0.3, 1.2) : undefined;
  return { crop, flip, jitter, grayscale, blurSigma };
}

/** One square RGB view of `side` pixels (HWC uint8), or `channels: 1` for a single grey channel. */
export interface ViewShape {
  side: number;
  channels?: 1 | 3;
}

export async function renderView(image: RgbImage, shape: ViewShape, p: ViewParams): Promise<Buffer> {
  const channels = shape.channels ?? 3;
  let pipeline = sharp(image.rgb, { raw: { width: image.width, height: image.height, channels: 3 } })
    .extract(p.crop)
    .resize(shape.side, shape.side, { fit: 'fill', kernel: 'lanczos3' });
  if (p.flip) pipeline = pipeline.flop();
  if (p.jitter) {
    pipeline = pipeline
      .modulate({ brightness: p.jitter.brightness, saturation: p.jitter.saturation, hue: Math.round(p.jitter.hueDegrees) })
      .linear(p.jitter.contrast, 128 * (1 - p.jitter.contrast));
  }
  if (p.grayscale || channels === 1) pipeline = pipeline.grayscale();
  if (p.blurSigma !== undefined) pipeline = pipeline.blur(p.blurSigma);
  const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
  if (channels === 1) return info.channels === 1 ? data : Buffer.from(data.filter((_, i) => i % info.channels === 0));
  return toRgb(data, info.channels, info.width * info.height);
}

export async function renderViews(image: RgbImage, shape: ViewShape, count: number, seed: string): Promise<Buffer[]> {
  const rng = seededRandom(seed);
  const params = Array.from({ length: count }, () => sampleViewParams(rng, image.width, image.height));
  return Promise.all(params.map((p) => renderView(image, shape, p)));
}

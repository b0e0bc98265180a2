/**
 * Decoding untrusted uploads with sharp: formats are recognised by their magic bytes before
 * anything is parsed (SVG/XML and everything else is refused unparsed), the pixel count is
 * checked from the header before decoding, and the image is auto-oriented, converted to sRGB and
 * flattened onto white.
 *
 * Hardening: every libvips loader except the six formats we accept is blocked process-wide (no
 * SVG, PDF, ImageMagick, FITS, Matlab, VIPS or other loader can ever run, whatever the bytes
 * claim), the pixel limit is enforced by libvips too, and large images are shrunk while they are
 * decoded (JPEG shrink-on-load), so memory per image is bounded by the working size, not by the
 * upload.
 */
import sharp from 'sharp';
import type { Metadata, SharpOptions } from 'sharp';
import { UnprocessableImageError } from '../errors';
import type { InputSpec } from '../schemas';

export interface DecodeLimits {
  maxPixels: number;
  /** Longest side of the decoded working image; larger images are shrunk while decoding. */
  maxSide?: number;
}

/** Views are crops resized to the model input (tens of pixels): 1024 px keeps every crop sharp. */
export const DEFAULT_WORKING_MAX_SIDE = 1024;

/** The libvips loaders of the formats sniffFormat accepts; every other loader is blocked. */
export const ALLOWED_LOADERS = [
  'VipsForeignLoadJpegBuffer',
  'VipsForeignLoadPngBuffer',
  'VipsForeignLoadNsgifBuffer',
  'VipsForeignLoadWebpBuffer',
  'VipsForeignLoadTiffBuffer',
  'VipsForeignLoadHeifBuffer',
];
sharp.block({ operation: ['VipsForeignLoad'] });
sharp.unblock({ operation: ALLOWED_LOADERS });

/** An oriented, opaque sRGB image, 3 bytes per pixel, row-major. */
export interface RgbImage {
  width: number;
  height: number;
  rgb: Buffer;
  format: string;
  /** The upload's own size (before orientation and shrinking), when decoded from a file. */
  sourceWidth?: number;
  sourceHeight?: number;
}

const SIGNATURES: Array<{ format: string; test: (b: Buffer) => boolean }> = [
  { format: 'jpeg', test: (b) => b.length > 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff },
  { format: 'png', test: (b) => b.length > 8 && b.readUInt32BE(0) === 0x89504e47 && b.readUInt32BE(4) === 0x0d0a1a0a },
  { format: 'gif', test: (b) => b.length > 6 && (b.toString('latin1', 0, 6) === 'GIF87a' || b.toString('latin1', 0, 6) === 'GIF89a') },
  { format: 'webp', test: (b) => b.length > 12 && b.toString('latin1', 0, 4) === 'RIFF' && b.toString('latin1', 8, 12) === 'WEBP' },
  { format: 'tiff', test: (b) => b.length > 4 && (b.readUInt32BE(0) === 0x49492a00 || b.readUInt32BE(0) === 0x4d4d002a) },
  {
    format: 'heif',
    test: (b) => b.length > 12 && b.toString('latin1', 4, 8) === 'ftyp' && /^(avif|avis|heic|heix|mif1|msf1)$/.test(b.toString('latin1', 8, 12)),
  },
];

export function sniffFormat(bytes: Buffer): string | undefined {
  return SIGNATURES.find((s) => s.test(bytes))?.format;
}

function sharpOptions(limits: DecodeLimits): SharpOptions {
  return { limitInputPixels: limits.maxPixels, failOn: 'error', pages: 1, page: 0, sequentialRead: true };
}

export async function decodeImage(bytes: Buffer, limits: DecodeLimits): Promise<RgbImage> {
  if (bytes.length === 0) throw new UnprocessableImageError('empty object: 0 bytes');
  const format = sniffFormat(bytes);
  if (!format) throw new UnprocessableImageError('not a supported image: expected JPEG, PNG, GIF, WebP, TIFF, AVIF or HEIF data');
  let meta: Metadata;
  try {
    // Header only: no pixels are decoded here, so the limit is checked below with a clear message.
    meta = await sharp(bytes, { ...sharpOptions(limits), limitInputPixels: false }).metadata();
  } catch (err) {
    throw new UnprocessableImageError(`unreadable ${format} header: ${concise((err as Error).message)}`);
  }
  const width = meta.width ?? 0;
  const height = meta.height ?? 0;
  if (width <= 0 || height <= 0) throw new UnprocessableImageError(`${format} image has no dimensions`);
  if (width * height > limits.maxPixels) {
    throw new UnprocessableImageError(`${width}x${height} pixels exceeds the limit of ${limits.maxPixels} pixels`);
  }
  try {
    const maxSide = limits.maxSide ?? DEFAULT_WORKING_MAX_SIDE;
    const { data, info } = await sharp(bytes, sharpOptions(limits))
      .rotate()
      .resize({ width: maxSide, height: maxSide, fit: 'inside', withoutEnlargement: true, kernel: 'lanczos3' })
      .flatten({ background: '#ffffff' })
      .toColourspace('srgb')
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    return {
      width: info.width,
      height: info.height,
      rgb: toRgb(data, info.channels, info.width * info.height),
      format,
      sourceWidth: width,
      sourceHeight: height,
    };
  } catch (err) {
    throw new UnprocessableImageError(`could not decode ${format}: ${concise((err as Error).message)}`);
  }
}

/** libvips errors can run to dozens of lines: keep a reason readable in GET /images. */
function concise(message: string): string {
  const lines = message
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const text = lines.length > 2 ? `${lines[0]} ... ${lines[lines.length - 1]}` : lines.join('; ');
  return text.length > 300 ? `${text.slice(0, 297)}...` : text;
}

export function toRgb(data: Buffer, channels: number, pixels: number): Buffer {
  if (channels === 3) return data;
  const out = Buffer.allocUnsafe(pixels * 3);
  for (let p = 0; p < pixels; p += 1) {
    const base = p * channels;
    const r = data[base]!;
    out[p * 3] = r;
    out[p * 3 + 1] = channels >= 3 ? data[base + 1]! : r;
    out[p * 3 + 2] = channels >= 3 ? data[base + 2]! : r;
  }
  return out;
}

/** Resizes a decoded image to the input spec's canonical size: HWC uint8, spec.channels per pixel. */
export async function canonicalize(image: RgbImage, spec: InputSpec): Promise<Buffer> {
  let pipeline = sharp(image.rgb, { raw: { width: image.width, height: image.height, channels: 3 } }).resize(spec.width, spec.height, {
    fit: spec.resize.fit,
    kernel: spec.resize.kernel,
    position: 'centre',
    background: '#ffffff',
  });
  if (spec.channels === 1) pipeline = pipeline.grayscale();
  const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
  if (info.channels === spec.channels) return data;
  if (spec.channels === 1) return Buffer.from(data.filter((_, i) => i % info.channels === 0));
  return toRgb(data, info.channels, info.width * info.height);
}

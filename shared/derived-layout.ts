/**
 * Derived images, independent of any model (layout 2). `augment` stores, per image:
 *
 *   derived/<imageId>/canonical.png  the upload, oriented, sRGB on white, resized so that its shorter
 *                                    side is WORKING_SIZE (default 256; never enlarged), aspect kept.
 *                                    Lossless PNG (zlib level 1): a model's input is made from it by
 *                                    one more resize, so a vector computed from it matches one computed
 *                                    from the original up to resizing in two steps instead of one.
 *   derived/<imageId>/views.jpg      the K augmented views, each VIEW_SIZE square (never larger than the
 *                                    canonical's shorter side), side by side in one JPEG (quality 90,
 *                                    4:4:4), each starting at a multiple of 16 pixels so no JPEG block
 *                                    straddles two views. Views are training inputs, already distorted
 *                                    on purpose: lossy storage costs them nothing measurable.
 *   derived/<imageId>/thumb.webp     for the console (GET /thumbnails): the working image with its longer
 *                                    side at most THUMBNAIL_SIZE (never enlarged), WebP quality 80.
 *   derived/<imageId>/meta.json      written last (DerivedMeta, schemaVersion 2).
 *
 * Every model (serving, candidate, imported, trained at any preset) resizes from these to its own
 * input. Layout 1 (before working resolution) stored the canonical image and views at the serving
 * model's input size in views.npy; `migrate-derived` re-derives such images from their originals.
 * Bytes and time per image of the formats considered: `npm run bench -- derived-format`.
 */
import sharp from 'sharp';
import {
  CANONICAL_FILE,
  DEFAULT_DERIVED,
  DERIVED_LAYOUT_VERSION,
  type DerivedSizes,
  modelExceedsWorking,
  THUMBNAIL_FILE,
  THUMBNAIL_SIZE,
  VIEWS_FILE,
} from './derived-sizes';
import { DEFAULT_WORKING_MAX_SIDE, canonicalize, decodeImage, type RgbImage, toRgb } from './image/decode';
import type { InputSpec } from './schemas';

export { CANONICAL_FILE, DEFAULT_DERIVED, DERIVED_LAYOUT_VERSION, type DerivedSizes, modelExceedsWorking, THUMBNAIL_FILE, THUMBNAIL_SIZE, VIEWS_FILE };

/** zlib level 1: 34% smaller than raw pixels at 4 ms per 256 px photo (levels 3-6: 46% at 6-8 ms). */
const PNG_OPTIONS = { compressionLevel: 1, adaptiveFiltering: false } as const;
const VIEWS_JPEG_OPTIONS = { quality: 90, chromaSubsampling: '4:4:4', mozjpeg: false } as const;
/** Views start at multiples of this in the strip: JPEG's 8x8 blocks (16 with subsampling) never straddle two. */
const VIEW_ALIGN = 16;

/** The working image: shorter side at most `workingSize`, aspect ratio kept, never enlarged. */
export async function toWorkingImage(image: RgbImage, workingSize: number): Promise<RgbImage> {
  const shorter = Math.min(image.width, image.height);
  if (shorter <= workingSize) return image;
  const scale = workingSize / shorter;
  // The shorter side lands exactly on workingSize; the longer one is rounded.
  const width = image.width <= image.height ? workingSize : Math.max(1, Math.round(image.width * scale));
  const height = image.height < image.width ? workingSize : Math.max(1, Math.round(image.height * scale));
  const { data, info } = await sharp(image.rgb, { raw: { width: image.width, height: image.height, channels: 3 } })
    .resize(width, height, { fit: 'fill', kernel: 'lanczos3' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { ...image, width: info.width, height: info.height, rgb: toRgb(data, info.channels, info.width * info.height) };
}

export function encodeCanonical(image: RgbImage): Promise<Buffer> {
  return sharp(image.rgb, { raw: { width: image.width, height: image.height, channels: 3 } })
    .png(PNG_OPTIONS)
    .toBuffer();
}

/** A stored canonical PNG back to RGB pixels (written by this module: no untrusted input here). */
export async function decodeCanonical(png: Buffer): Promise<RgbImage> {
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, rgb: toRgb(data, info.channels, info.width * info.height), format: 'png' };
}

/** The console's thumbnail of a working image: longer side at most THUMBNAIL_SIZE, never enlarged. */
export async function encodeThumbnail(image: RgbImage): Promise<{ webp: Buffer; width: number; height: number }> {
  const { data, info } = await sharp(image.rgb, { raw: { width: image.width, height: image.height, channels: 3 } })
    .resize(THUMBNAIL_SIZE, THUMBNAIL_SIZE, { fit: 'inside', withoutEnlargement: true })
    .webp({ quality: 80 })
    .toBuffer({ resolveWithObject: true });
  return { webp: data, width: info.width, height: info.height };
}

/** The side of the stored views for a canonical image: VIEW_SIZE, or its shorter side when that is smaller. */
export function viewSideFor(canonical: { width: number; height: number }, viewSize: number): number {
  return Math.min(viewSize, canonical.width, canonical.height);
}

export function viewStride(side: number): number {
  return Math.ceil(side / VIEW_ALIGN) * VIEW_ALIGN;
}

/** K square RGB views of `side` pixels, side by side at `viewStride(side)` in one JPEG. */
export async function packViews(views: Buffer[], side: number): Promise<Buffer> {
  if (views.length === 0) throw new Error('packViews: no views');
  const stride = viewStride(side);
  const width = stride * views.length;
  const strip = Buffer.alloc(width * side * 3, 255);
  views.forEach((view, i) => {
    if (view.length !== side * side * 3) throw new Error(`packViews: view ${i} has ${view.length} bytes, expected ${side * side * 3}`);
    for (let y = 0; y < side; y += 1) view.copy(strip, (y * width + i * stride) * 3, y * side * 3, (y + 1) * side * 3);
  });
  return sharp(strip, { raw: { width, height: side, channels: 3 } })
    .jpeg(VIEWS_JPEG_OPTIONS)
    .toBuffer();
}

/** The views of a strip written by packViews, as RGB buffers. */
export async function unpackViews(jpeg: Buffer, count: number, side: number): Promise<Buffer[]> {
  const { data, info } = await sharp(jpeg).raw().toBuffer({ resolveWithObject: true });
  const rgb = toRgb(data, info.channels, info.width * info.height);
  const stride = viewStride(side);
  return Array.from({ length: count }, (_, i) => {
    const view = Buffer.alloc(side * side * 3);
    for (let y = 0; y < side; y += 1) rgb.copy(view, y * side * 3, (y * info.width + i * stride) * 3, (y * info.width + i * stride + side) * 3);
    return view;
  });
}

/**
 * An upload as every path sees it: decoded (oriented, sRGB, at most DEFAULT_WORKING_MAX_SIDE on its
 * longer side, or twice the working size if that is more), and its working image. augment stores the
 * working image; POST /search makes its query from the same, so an image searched for with its own
 * bytes finds itself at distance 0.
 */
export async function decodeToWorking(bytes: Buffer, maxPixels: number, sizes: DerivedSizes): Promise<{ decoded: RgbImage; working: RgbImage }> {
  const decoded = await decodeImage(bytes, { maxPixels, maxSide: Math.max(DEFAULT_WORKING_MAX_SIDE, 2 * sizes.workingSize) });
  return { decoded, working: await toWorkingImage(decoded, sizes.workingSize) };
}

/** A model's input pixels (HWC uint8, spec.channels) from a working image. */
export function modelPixels(working: RgbImage, spec: InputSpec): Promise<Buffer> {
  return canonicalize(working, spec);
}

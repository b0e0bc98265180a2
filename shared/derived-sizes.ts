/**
 * The sizes and names of derived images (shared/derived-layout.ts), without sharp: configuration
 * and the lifecycle function read these, and the lifecycle function's package has no native modules.
 */
import type { InputSpec } from './schemas';

export interface DerivedSizes {
  /** Shorter side of the stored canonical image, in pixels (images smaller than this are kept as they are). */
  workingSize: number;
  /** Side of each stored augmented view (at most the canonical image's shorter side). */
  viewSize: number;
}

/** Large enough for a 224 px model (a cover-crop of 224 from a 256 shorter side, as ImageNet evaluation does). */
export const DEFAULT_DERIVED: DerivedSizes = { workingSize: 256, viewSize: 224 };

export const DERIVED_LAYOUT_VERSION = 2;
export const CANONICAL_FILE = 'canonical.png';
export const VIEWS_FILE = 'views.jpg';
export const THUMBNAIL_FILE = 'thumb.webp';
/** The thumbnail's longer side at most (GET /thumbnails; the console shows it at up to 256 CSS px). */
export const THUMBNAIL_SIZE = 256;

/**
 * Why a model cannot use the derived images, or undefined when it can: a model whose input is larger
 * than the working resolution would only ever see upsampled pixels.
 */
export function modelExceedsWorking(spec: Pick<InputSpec, 'height' | 'width'>, workingSize: number): string | undefined {
  const side = Math.max(spec.height, spec.width);
  if (side <= workingSize) return undefined;
  return (
    `the model's input is ${spec.height}x${spec.width} but derived images are stored at a working resolution of ${workingSize} px ` +
    `(shorter side): it would only see upsampled pixels. Set WORKING_SIZE (embedded stack; it re-derives existing images from their ` +
    `originals on start) or workingSize (CDK) to at least ${side}`
  );
}

/** Small images generated with sharp for tests (no committed binaries). */
import sharp from 'sharp';

export function solidPng(width: number, height: number, rgb: [number, number, number], alpha?: number): Promise<Buffer> {
  const channels = alpha === undefined ? 3 : 4;
  return sharp({ create: { width, height, channels, background: { r: rgb[0], g: rgb[1], b: rgb[2], ...(alpha !== undefined ? { alpha } : {}) } } })
    .png()
    .toBuffer();
}

/** A left-to-right gradient, so crops, flips and rotations are visible in the pixels. */
export function gradientImage(width: number, height: number, format: 'png' | 'jpeg' | 'webp' = 'png'): Promise<Buffer> {
  const data = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y += 1) {
    for (let x = 0; x < width; x += 1) {
      const i = (y * width + x) * 3;
      data[i] = Math.round((255 * x) / Math.max(1, width - 1));
      data[i + 1] = Math.round((255 * y) / Math.max(1, height - 1));
      data[i + 2] = 64;
    }
  }
  return sharp(data, { raw: { width, height, channels: 3 } })
    .toFormat(format)
    .toBuffer();
}

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

/**
 * A photo-like image: smooth lighting, a few solid shapes with edges, and fine texture (the detail a
 * 32x32 thumbnail loses), different for every seed; JPEG quality 90 or PNG.
 */
export function photoLike(width: number, height: number, seed: number, format: 'jpeg' | 'png' = 'jpeg'): Promise<Buffer> {
  let state = (seed * 2654435761) >>> 0 || 1;
  const rand = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 4294967296;
  };
  // Objects at every scale, from a fifth of the frame down to a few pixels: detail a thumbnail loses.
  const shapes = Array.from({ length: 120 }, (_, i) => ({
    cx: rand() * width,
    cy: rand() * height,
    r: (i < 6 ? 0.05 + 0.15 * rand() : 0.004 + 0.03 * rand()) * Math.min(width, height),
    rgb: [rand() * 255, rand() * 255, rand() * 255],
    square: rand() < 0.5,
  }));
  const base = [rand() * 200, rand() * 200, rand() * 200];
  const data = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y += 1) {
    for (let x = 0; x < width; x += 1) {
      let rgb = base.map((b, c) => b + 40 * Math.sin((x / width) * 3 + c) * Math.cos((y / height) * 2));
      for (const s of shapes) {
        const inside = s.square ? Math.abs(x - s.cx) < s.r && Math.abs(y - s.cy) < s.r : (x - s.cx) ** 2 + (y - s.cy) ** 2 < s.r ** 2;
        if (inside) rgb = s.rgb;
      }
      const i = (y * width + x) * 3;
      for (let c = 0; c < 3; c += 1) data[i + c] = Math.max(0, Math.min(255, Math.round(rgb[c]! + (rand() - 0.5) * 60)));
    }
  }
  const img = sharp(data, { raw: { width, height, channels: 3 } });
  return (format === 'jpeg' ? img.jpeg({ quality: 90 }) : img.png()).toBuffer();
}

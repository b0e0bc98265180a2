import sharp from 'sharp';
import { UnprocessableImageError } from '../../../../shared/errors';
import { canonicalize, decodeImage, sniffFormat } from '../../../../shared/image/decode';
import { testManifest } from '../../../support/fakes';
import { gradientImage, solidPng } from '../../../support/images';

const limits = { maxPixels: 10_000_000 };

describe('decodeImage', () => {
  it('decodes PNG, JPEG and WebP to opaque sRGB with 3 bytes per pixel', async () => {
    for (const format of ['png', 'jpeg', 'webp'] as const) {
      const img = await decodeImage(await gradientImage(40, 20, format), limits);
      expect(img).toMatchObject({ width: 40, height: 20, format });
      expect(img.rgb.length).toBe(40 * 20 * 3);
    }
  });

  it('flattens transparency onto white and expands grayscale to RGB', async () => {
    const transparent = await decodeImage(await solidPng(4, 4, [0, 0, 0], 0), limits);
    expect([...transparent.rgb.subarray(0, 3)]).toEqual([255, 255, 255]);
    const gray = await sharp(Buffer.alloc(16, 90), { raw: { width: 4, height: 4, channels: 1 } })
      .toColourspace('b-w')
      .png()
      .toBuffer();
    const decoded = await decodeImage(gray, limits);
    expect(decoded.rgb.length).toBe(48);
    expect([...decoded.rgb.subarray(0, 3)]).toEqual([90, 90, 90]);
  });

  it('applies the EXIF orientation', async () => {
    const rotated = await sharp(await gradientImage(30, 10))
      .jpeg()
      .withMetadata({ orientation: 6 })
      .toBuffer();
    const img = await decodeImage(rotated, limits);
    expect([img.width, img.height]).toEqual([10, 30]);
  });

  it('quarantines non-images, SVG, empty and truncated files with a reason', async () => {
    const svg = Buffer.from('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><svg xmlns="http://www.w3.org/2000/svg">&e;</svg>');
    const png = await gradientImage(64, 64);
    for (const [bytes, reason] of [
      [Buffer.from('hello, world'), /not a supported image/],
      [svg, /not a supported image/],
      [Buffer.alloc(0), /empty/],
      [png.subarray(0, png.length / 2), /could not decode png|unreadable/],
    ] as const) {
      await expect(decodeImage(bytes, limits)).rejects.toThrow(UnprocessableImageError);
      await expect(decodeImage(bytes, limits)).rejects.toThrow(reason);
    }
  });

  it('refuses images over the pixel limit from their header', async () => {
    await expect(decodeImage(await gradientImage(100, 100), { maxPixels: 5000 })).rejects.toThrow(/100x100 pixels exceeds the limit of 5000/);
  });
});

describe('sniffFormat', () => {
  it('recognises formats by magic bytes only', async () => {
    expect(sniffFormat(await gradientImage(8, 8, 'jpeg'))).toBe('jpeg');
    expect(sniffFormat(Buffer.from('<svg></svg>'))).toBeUndefined();
  });
});

describe('canonicalize', () => {
  it('resizes to the input spec size and channel count', async () => {
    const spec = testManifest().input;
    const img = await decodeImage(await gradientImage(50, 30), limits);
    expect((await canonicalize(img, spec)).length).toBe(16 * 16 * 3);
    expect((await canonicalize(img, { ...spec, channels: 1, mean: [0], std: [1] })).length).toBe(16 * 16);
  });
});

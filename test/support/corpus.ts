/**
 * A corpus of awkward and hostile uploads, generated at test time (no committed binaries), each
 * with the outcome the pipeline must reach: indexed, or quarantined with a reason matching `reason`.
 */
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';

export interface CorpusItem {
  key: string;
  bytes: Buffer;
  expect: 'indexed' | 'quarantined';
  reason?: RegExp;
  what: string;
}

const crcTable = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf: Buffer): number {
  let c = 0xffffffff;
  for (const b of buf) c = crcTable[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function pngChunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/** A well-formed PNG header announcing width x height 8-bit RGB pixels, with a few compressed rows. */
export function pngBomb(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  // Zero rows compress ~1000:1: a few MB of zeros announce far more pixels than they carry.
  const rows = deflateSync(Buffer.alloc(Math.min(height, 64) * (1 + width * 3)));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', rows),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/** A GIF whose logical screen and frame announce width x height pixels. */
export function gifHeader(width: number, height: number): Buffer {
  const b = Buffer.alloc(32);
  b.write('GIF89a', 0, 'latin1');
  b.writeUInt16LE(width, 6);
  b.writeUInt16LE(height, 8);
  b.set([0x00, 0, 0], 10);
  b[13] = 0x2c; // image descriptor
  b.writeUInt16LE(0, 14);
  b.writeUInt16LE(0, 16);
  b.writeUInt16LE(width, 18);
  b.writeUInt16LE(height, 20);
  b[22] = 0;
  b.set([0x02, 0x02, 0x4c, 0x01, 0x00, 0x3b], 23);
  return b.subarray(0, 29);
}

function noise(width: number, height: number, channels: 3 | 4 = 3) {
  return sharp({ create: { width, height, channels, background: { r: 90, g: 140, b: 200, alpha: 0.5 }, noise: { type: 'gaussian', mean: 128, sigma: 40 } } });
}

async function animatedGif(): Promise<Buffer> {
  const frames = await Promise.all(
    [
      [255, 0, 0],
      [0, 255, 0],
      [0, 0, 255],
    ].map(([r, g, b]) =>
      sharp({ create: { width: 24, height: 16, channels: 3, background: { r: r!, g: g!, b: b! } } })
        .png()
        .toBuffer(),
    ),
  );
  return sharp(frames, { join: { animated: true } })
    .gif({ loop: 0, delay: [100, 100, 100] })
    .toBuffer();
}

/** `largePhoto`: include the tens-of-megapixels photo (about 1 s to encode). */
export async function buildCorpus({ largePhoto = true } = {}): Promise<CorpusItem[]> {
  const png = await noise(40, 30).png().toBuffer();
  const jpeg = await noise(64, 48).jpeg({ quality: 85 }).toBuffer();
  const items: CorpusItem[] = [
    { what: 'CMYK JPEG', key: 'awkward/cmyk.jpg', bytes: await noise(48, 32).toColourspace('cmyk').jpeg().toBuffer(), expect: 'indexed' },
    { what: '16-bit PNG', key: 'awkward/rgb16.png', bytes: await noise(40, 40).toColourspace('rgb16').png().toBuffer(), expect: 'indexed' },
    { what: 'grayscale with alpha', key: 'awkward/gray-alpha.png', bytes: await noise(32, 32, 4).toColourspace('b-w').png().toBuffer(), expect: 'indexed' },
    { what: 'palette PNG', key: 'awkward/palette.png', bytes: await noise(32, 32).png({ palette: true, colours: 16 }).toBuffer(), expect: 'indexed' },
    { what: 'animated GIF', key: 'awkward/animated.gif', bytes: await animatedGif(), expect: 'indexed' },
    { what: 'WebP', key: 'awkward/photo.webp', bytes: await noise(50, 40).webp().toBuffer(), expect: 'indexed' },
    { what: 'TIFF', key: 'awkward/scan.tiff', bytes: await noise(50, 40).tiff().toBuffer(), expect: 'indexed' },
    { what: 'AVIF', key: 'awkward/photo.avif', bytes: await noise(32, 24).avif({ effort: 0 }).toBuffer(), expect: 'indexed' },
    {
      what: 'EXIF orientation 6',
      key: 'awkward/rotated.jpg',
      bytes: await noise(60, 20).withMetadata({ orientation: 6 }).jpeg().toBuffer(),
      expect: 'indexed',
    },
    { what: '1x1 pixel', key: 'awkward/1x1.png', bytes: await noise(1, 1).png().toBuffer(), expect: 'indexed' },
    { what: 'extreme aspect 4000x2', key: 'awkward/wide.png', bytes: await noise(4000, 2).png().toBuffer(), expect: 'indexed' },
    { what: 'extreme aspect 3x3000', key: 'awkward/tall.png', bytes: await noise(3, 3000).png().toBuffer(), expect: 'indexed' },
    { what: 'key with spaces', key: 'awkward/with spaces in name.png', bytes: png, expect: 'indexed' },
    { what: "key with '+'", key: 'awkward/a+b=c&d.png', bytes: png, expect: 'indexed' },
    { what: 'unicode key', key: 'awkward/ünïcødé/猫 🐈.png', bytes: png, expect: 'indexed' },
    { what: 'no extension', key: 'awkward/no-extension', bytes: jpeg, expect: 'indexed' },
    { what: 'wrong extension', key: 'awkward/really-a-jpeg.png', bytes: jpeg, expect: 'indexed' },
    { what: 'upper-case extension', key: 'awkward/SHOUT.JPG', bytes: jpeg, expect: 'indexed' },

    { what: 'empty object', key: 'hostile/empty.png', bytes: Buffer.alloc(0), expect: 'quarantined', reason: /empty object/ },
    {
      what: 'plain text',
      key: 'hostile/notes.jpg',
      bytes: Buffer.from('these are not the pixels you are looking for\n'),
      expect: 'quarantined',
      reason: /not a supported image/,
    },
    {
      what: 'truncated PNG',
      key: 'hostile/truncated.png',
      bytes: (await noise(64, 64).png().toBuffer()).subarray(0, 600),
      expect: 'quarantined',
      reason: /could not decode png|unreadable png/,
    },
    { what: 'truncated JPEG', key: 'hostile/truncated.jpg', bytes: jpeg.subarray(0, Math.floor(jpeg.length / 2)), expect: 'quarantined', reason: /jpeg/ },
    {
      what: 'JPEG magic then garbage',
      key: 'hostile/garbage.jpg',
      bytes: Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(200, 0x41)]),
      expect: 'quarantined',
      reason: /jpeg/,
    },
    {
      what: 'PNG announcing 60000x60000',
      key: 'hostile/bomb-60000.png',
      bytes: pngBomb(60_000, 60_000),
      expect: 'quarantined',
      reason: /60000x60000 pixels exceeds the limit/,
    },
    {
      what: 'GIF announcing 65535x65535',
      key: 'hostile/bomb.gif',
      bytes: gifHeader(65_535, 65_535),
      expect: 'quarantined',
      reason: /65535x65535 pixels exceeds the limit|gif/,
    },
    {
      what: 'SVG',
      key: 'hostile/vector.svg',
      bytes: Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><image href="http://127.0.0.1:9/x.png"/></svg>'),
      expect: 'quarantined',
      reason: /not a supported image/,
    },
    {
      what: 'XML with an external entity',
      key: 'hostile/xxe.png',
      bytes: Buffer.from('<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]><svg xmlns="http://www.w3.org/2000/svg">&x;</svg>'),
      expect: 'quarantined',
      reason: /not a supported image/,
    },
    { what: 'PDF', key: 'hostile/doc.pdf', bytes: Buffer.from('%PDF-1.7\n1 0 obj<<>>endobj\n%%EOF\n'), expect: 'quarantined', reason: /not a supported image/ },
    {
      what: 'BMP (not accepted)',
      key: 'hostile/old.bmp',
      bytes: Buffer.concat([Buffer.from('BM'), Buffer.alloc(60)]),
      expect: 'quarantined',
      reason: /not a supported image/,
    },
    {
      what: 'HEIF brand with garbage',
      key: 'hostile/fake.heic',
      bytes: Buffer.concat([Buffer.from([0, 0, 0, 24]), Buffer.from('ftypheic'), Buffer.alloc(100, 7)]),
      expect: 'quarantined',
      reason: /heif/,
    },
  ];
  if (largePhoto) {
    items.push({
      what: '35-megapixel JPEG photo',
      key: 'awkward/35mp photo.jpg',
      bytes: await noise(7000, 5000).jpeg({ quality: 70 }).toBuffer(),
      expect: 'indexed',
    });
  }
  return items;
}

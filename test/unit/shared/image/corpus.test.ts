/**
 * Awkward and hostile uploads through the augment use case: every file ends indexed-ready
 * (augmented) or quarantined with a readable reason, and nothing allocates what a header claims.
 */
import sharp from 'sharp';
import { artifactKeys } from '../../../../shared/artifact-keys';
import { imageIdForKey } from '../../../../shared/ids';
import { decodeImage } from '../../../../shared/image/decode';
import { augmentImage } from '../../../../shared/use-cases/augment-image';
import { buildCorpus, pngBomb, type CorpusItem } from '../../../support/corpus';
import { ARTIFACTS, fakePipeline, IMAGES } from '../../../support/pipeline';

describe('awkward and hostile uploads', () => {
  let corpus: CorpusItem[];
  beforeAll(async () => {
    corpus = await buildCorpus();
  }, 60_000);

  it('each file is augmented or quarantined as expected, with a reason', async () => {
    const p = await fakePipeline();
    p.settings.maxImageBytes = 50_000_000;
    p.settings.maxImagePixels = 100_000_000;
    const outcomes: string[] = [];
    for (const item of corpus) {
      await p.store.put(IMAGES, item.key, item.bytes);
      const outcome = await augmentImage(p, { kind: 'created', bucket: IMAGES, key: item.key, sequencer: '01' });
      const record = p.store.json(ARTIFACTS, artifactKeys.quarantine(imageIdForKey(item.key))) as { reason: string } | undefined;
      outcomes.push(`${item.what}: ${outcome}${record ? ` (${record.reason})` : ''}`);
      if (item.expect === 'indexed') {
        expect({ what: item.what, outcome }).toEqual({ what: item.what, outcome: 'augmented' });
      } else {
        expect({ what: item.what, outcome }).toEqual({ what: item.what, outcome: 'quarantined' });
        expect(record!.reason).toMatch(item.reason!);
        expect(record!.reason.length).toBeLessThanOrEqual(400);
      }
    }
    console.log(outcomes.join('\n'));
  }, 60_000);

  it('oriented images come out upright, large photos shrink to the working size while decoding', async () => {
    const rotated = corpus.find((c) => c.what === 'EXIF orientation 6')!;
    expect(await decodeImage(rotated.bytes, { maxPixels: 1e8 })).toMatchObject({ width: 20, height: 60 });
    const photo = corpus.find((c) => c.what === '35-megapixel JPEG photo')!;
    const decoded = await decodeImage(photo.bytes, { maxPixels: 1e8 });
    expect(Math.max(decoded.width, decoded.height)).toBe(1024);
    expect({ w: decoded.sourceWidth, h: decoded.sourceHeight }).toEqual({ w: 7000, h: 5000 });
    expect(decoded.rgb.length).toBe(decoded.width * decoded.height * 3);
  });

  it('a PNG header announcing 60,000 x 60,000 pixels is refused without allocating them', async () => {
    const before = process.memoryUsage().rss;
    await expect(decodeImage(pngBomb(60_000, 60_000), { maxPixels: 100_000_000 })).rejects.toThrow(/60000x60000 pixels exceeds the limit of 100000000 pixels/);
    // 60,000^2 RGB pixels would be 10.8 GB.
    expect(process.memoryUsage().rss - before).toBeLessThan(200 * 1024 * 1024);
  });

  it('the pixel limit is configurable', async () => {
    const ok = await sharp({ create: { width: 100, height: 100, channels: 3, background: '#888' } })
      .png()
      .toBuffer();
    await expect(decodeImage(ok, { maxPixels: 9_999 })).rejects.toThrow(/100x100 pixels exceeds the limit of 9999 pixels/);
    await expect(decodeImage(ok, { maxPixels: 10_000 })).resolves.toMatchObject({ width: 100 });
  });

  it('loaders for other formats are blocked in libvips itself, even when handed to sharp directly', async () => {
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect width="4" height="4"/></svg>');
    await expect(sharp(svg).raw().toBuffer()).rejects.toThrow(/unsupported image format/);
    const ppm = Buffer.concat([Buffer.from('P6\n2 2\n255\n'), Buffer.alloc(12, 200)]);
    await expect(sharp(ppm).raw().toBuffer()).rejects.toThrow(/unsupported image format/);
  });
});

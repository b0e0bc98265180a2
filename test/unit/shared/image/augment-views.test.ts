import { renderViews, sampleViewParams, seededRandom } from '../../../../shared/image/augment-views';
import { decodeImage } from '../../../../shared/image/decode';
import { gradientImage } from '../../../support/images';

describe('augmented views', () => {
  const spec = { side: 16 };

  it('are identical for the same seed and differ for another', async () => {
    const img = await decodeImage(await gradientImage(64, 48), { maxPixels: 1e7 });
    const a = await renderViews(img, spec, 3, 'id:etag1');
    const b = await renderViews(img, spec, 3, 'id:etag1');
    const c = await renderViews(img, spec, 3, 'id:etag2');
    expect(a.map((v) => v.toString('hex'))).toEqual(b.map((v) => v.toString('hex')));
    expect(a.map((v) => v.toString('hex'))).not.toEqual(c.map((v) => v.toString('hex')));
    for (const v of a) expect(v.length).toBe(16 * 16 * 3);
  });

  it('draw crops inside the original with SimCLR scale and aspect ranges', () => {
    const rng = seededRandom('s');
    for (let i = 0; i < 500; i += 1) {
      const { crop } = sampleViewParams(rng, 300, 200);
      expect(crop.left).toBeGreaterThanOrEqual(0);
      expect(crop.top).toBeGreaterThanOrEqual(0);
      expect(crop.left + crop.width).toBeLessThanOrEqual(300);
      expect(crop.top + crop.height).toBeLessThanOrEqual(200);
      const area = (crop.width * crop.height) / (300 * 200);
      expect(area).toBeGreaterThan(0.18);
      expect(area).toBeLessThanOrEqual(1);
    }
  });
});

/**
 * Images for the console's browser test and its screenshots: Fashion-MNIST test images (PNG, 28 px)
 * under `fashion/`, ordinary photos (generated, 300-1400 px JPEG) under `photos/`, uploaded with the
 * S3 SDK as a user's tool would.
 */
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { CLASS_NAMES, loadFashionMnist, pngName, toPng } from '../../scripts/fashion-mnist';
import { photoLike } from './images';

export interface Uploaded {
  key: string;
  /** Fashion-MNIST's class, for labelling. */
  truth?: string;
}

export async function uploadFashion(s3: S3Client, count: number, offset = 0): Promise<Uploaded[]> {
  const fm = loadFashionMnist('t10k', count, offset);
  const out: Uploaded[] = [];
  for (let i = 0; i < fm.images.length; i += 8) {
    const batch = fm.images.slice(i, i + 8).map(async (pixels, j) => {
      const key = `fashion/${pngName('t10k', offset + i + j)}`;
      await s3.send(new PutObjectCommand({ Bucket: 'images', Key: key, Body: await toPng(pixels), ContentType: 'image/png' }));
      return { key, truth: CLASS_NAMES[fm.labels[i + j]!]! };
    });
    out.push(...(await Promise.all(batch)));
  }
  return out;
}

export async function uploadPhotos(s3: S3Client, count: number): Promise<Uploaded[]> {
  const out: Uploaded[] = [];
  for (let i = 0; i < count; i += 1) {
    const key = `photos/photo-${String(i).padStart(2, '0')}.jpg`;
    const [w, h] = i % 2 === 0 ? [1400 - i * 40, 900 - i * 20] : [640, 960];
    await s3.send(new PutObjectCommand({ Bucket: 'images', Key: key, Body: await photoLike(w, h, i + 1), ContentType: 'image/jpeg' }));
    out.push({ key });
  }
  return out;
}

/**
 * Ordinary photos for the benchmarks: scikit-image's sample images (astronaut, coffee, the cat
 * Chelsea, rocket, coins, retina, Hubble deep field, ...; public domain or CC0), taken from the
 * scikit-image wheel the package index serves (nothing is installed), cached under .cache/photos.
 * Without the wheel, photo-like images generated here stand in, and the result says so.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { photoLike } from '../../test/support/images';
import { PYTHON, ROOT } from './common';

export interface Photo {
  name: string;
  bytes: Buffer;
  width: number;
  height: number;
}

const DIR = join(ROOT, '.cache', 'photos');

function fetchSkimagePhotos(): boolean {
  if (existsSync(DIR) && readdirSync(DIR).length > 0) return true;
  mkdirSync(DIR, { recursive: true });
  const wheels = join(ROOT, '.cache', 'wheels');
  const dl = spawnSync(PYTHON, ['-m', 'pip', 'download', 'scikit-image==0.26.0', '--no-deps', '--retries', '0', '--timeout', '5', '-d', wheels], {
    encoding: 'utf8',
  });
  if (dl.status !== 0) return false;
  const script = [
    'import glob, sys, zipfile',
    'w = sorted(glob.glob(sys.argv[1] + "/scikit_image-*.whl"))[-1]',
    'z = zipfile.ZipFile(w)',
    'for n in z.namelist():',
    '    if n.startswith("skimage/data/") and n.count("/") == 2 and n.endswith((".png", ".jpg")):',
    '        open(sys.argv[2] + "/" + n.split("/")[-1], "wb").write(z.read(n))',
  ].join('\n');
  return spawnSync(PYTHON, ['-c', script, wheels, DIR]).status === 0 && readdirSync(DIR).length > 0;
}

/** Photos whose shorter side is at least `minSide` (the 300-1,400 px), by name. */
export async function benchPhotos(minSide = 300): Promise<{ source: string; photos: Photo[] }> {
  if (fetchSkimagePhotos()) {
    const photos: Photo[] = [];
    for (const name of readdirSync(DIR).sort()) {
      const bytes = readFileSync(join(DIR, name));
      const meta = await sharp(bytes).metadata();
      if (Math.min(meta.width ?? 0, meta.height ?? 0) >= minSide) photos.push({ name, bytes, width: meta.width!, height: meta.height! });
    }
    return { source: 'scikit-image 0.26.0 sample images (from its wheel)', photos };
  }
  const sizes: Array<[number, number]> = [
    [300, 400],
    [640, 480],
    [1024, 768],
    [1400, 933],
    [512, 512],
  ];
  const photos = await Promise.all(sizes.map(async ([w, h], i) => ({ name: `synthetic-${i}.jpg`, bytes: await photoLike(w, h, i + 1), width: w, height: h })));
  return { source: 'synthetic photo-like images (the scikit-image wheel was not available)', photos };
}

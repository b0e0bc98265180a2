/**
 * Fashion-MNIST from the Debian package `dataset-fashion-mnist` (/usr/share/datasets/fashion-mnist):
 * a loader for tests, the demo and the benchmarks, and a command that writes images as PNG files.
 *
 *   npx tsx scripts/fashion-mnist.ts export --split t10k --count 200 --out ./fm-png --prefix fm/
 *
 * labels.csv (key,label) names each image by `<prefix><file name>`: the key it gets when the folder
 * is uploaded under that prefix, ready for `npm run pipeline -- labels import`.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import sharp from 'sharp';

export const FASHION_MNIST_DIR = process.env.FASHION_MNIST_DIR ?? '/usr/share/datasets/fashion-mnist';
export const CLASS_NAMES = ['t-shirt', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'ankle-boot'];

export interface FashionMnist {
  images: Uint8Array[];
  labels: number[];
}

export function loadFashionMnist(split: 'train' | 't10k', count = Infinity, offset = 0): FashionMnist {
  const read = (name: string) => {
    try {
      return gunzipSync(readFileSync(join(FASHION_MNIST_DIR, name)));
    } catch (err) {
      throw new Error(`cannot read ${join(FASHION_MNIST_DIR, name)} (${(err as Error).message}); install it with: apt-get install -y dataset-fashion-mnist`);
    }
  };
  const images = read(`${split}-images-idx3-ubyte.gz`);
  const labels = read(`${split}-labels-idx1-ubyte.gz`);
  const total = images.readUInt32BE(4);
  const n = Math.min(count, total - offset);
  const out: FashionMnist = { images: [], labels: [] };
  for (let i = offset; i < offset + n; i += 1) {
    out.images.push(images.subarray(16 + i * 784, 16 + (i + 1) * 784));
    out.labels.push(labels[8 + i]!);
  }
  return out;
}

/**
 * Mean share of each query image's k nearest other images (cosine on raw pixels, searched among
 * all `images`) that have its class: the raw-pixel baseline for the retrieval numbers of the e2e
 * test, the demo and the scenarios. `queries` defaults to every image.
 */
export function rawPixelAgreement(images: Uint8Array[], labels: number[], k: number, queries?: number[]): number {
  const unit = images.map((px) => {
    const norm = Math.hypot(...px) || 1;
    return Float32Array.from(px, (v) => v / norm);
  });
  const qs = queries ?? unit.map((_, i) => i);
  let total = 0;
  for (const i of qs) {
    const q = unit[i]!;
    const sims = unit.map((v, j) => (j === i ? -Infinity : v.reduce((s, x, d) => s + x * q[d]!, 0)));
    const top = sims
      .map((s, j) => [s, j] as const)
      .sort((a, b) => b[0] - a[0])
      .slice(0, k);
    total += top.filter(([, j]) => labels[j] === labels[i]).length / k;
  }
  return total / qs.length;
}

export function toPng(pixels: Uint8Array): Promise<Buffer> {
  return sharp(Buffer.from(pixels), { raw: { width: 28, height: 28, channels: 1 } })
    .png()
    .toBuffer();
}

export function pngName(split: string, index: number): string {
  return `${split}-${String(index).padStart(5, '0')}.png`;
}

async function exportPngs(args: string[]): Promise<void> {
  const opt = (name: string, def: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 && args[i + 1] ? args[i + 1]! : def;
  };
  const split = opt('split', 't10k') as 'train' | 't10k';
  const count = Number(opt('count', '200'));
  const offset = Number(opt('offset', '0'));
  const out = opt('out', 'fm-png');
  const prefix = opt('prefix', '');
  const data = loadFashionMnist(split, count, offset);
  mkdirSync(out, { recursive: true });
  const csv = ['key,label'];
  for (let i = 0; i < data.images.length; i += 1) {
    const name = pngName(split, offset + i);
    writeFileSync(join(out, name), await toPng(data.images[i]!));
    csv.push(`${prefix}${name},${CLASS_NAMES[data.labels[i]!]}`);
  }
  writeFileSync(join(out, 'labels.csv'), `${csv.join('\n')}\n`);
  console.log(`wrote ${data.images.length} PNGs and labels.csv to ${out}`);
}

if (require.main === module) {
  const [command, ...rest] = process.argv.slice(2);
  if (command !== 'export') {
    console.error('usage: tsx scripts/fashion-mnist.ts export [--split t10k|train] [--count N] [--offset N] [--out DIR] [--prefix KEYPREFIX]');
    process.exit(2);
  }
  exportPngs(rest).catch((err) => {
    console.error(err.message);
    process.exit(1);
  });
}

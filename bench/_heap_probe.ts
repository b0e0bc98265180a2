import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { loadFashionMnist, pngName, toPng } from '../scripts/fashion-mnist';
import { getJson, startStackProcess, waitFor } from '../test/support/stack-process';
async function main() {
  const count = Number(process.argv[2] ?? 4000);
  const fm = loadFashionMnist('train', count, 0);
  const keys = fm.images.map((_, i) => `bench/${pngName('train', i)}`);
  const pngs = await Promise.all(fm.images.map((px) => toPng(px)));
  const dir = mkdtempSync(join(tmpdir(), 'heap-'));
  const stack = await startStackProcess(dir, {}, ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${dir}`]);
  const s3 = new S3Client({ endpoint: stack.s3, forcePathStyle: true, region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
  let next = 0;
  await Promise.all(Array.from({ length: 8 }, async () => { while (next < count) { const i = next++; await s3.send(new PutObjectCommand({ Bucket: 'images', Key: keys[i], Body: pngs[i], ContentType: 'image/png' })); } }));
  await waitFor('indexed', async () => { const h = (await getJson<{ indexed: number; pending: number }>(`${stack.api}/health`)).body; return h.indexed >= count && h.pending === 0 ? true : undefined; }, 600_000, 200);
  process.kill(stack.pid, 'SIGUSR2');
  await waitFor('snapshot', async () => (readdirSync(dir).some((f) => f.endsWith('.heapsnapshot')) ? true : undefined), 120_000, 500);
  await new Promise((r) => setTimeout(r, 5000));
  console.log('snapshot in', dir, readdirSync(dir));
  await stack.stop();
  s3.destroy();
}
void main();

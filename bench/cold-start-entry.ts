/**
 * Cold start of the embed path, bundled with esbuild as the Lambda is: process start -> modules
 * loaded -> ONNX session created -> first embedding. Prints milliseconds since process start.
 * usage: node cold-start.cjs <dir with encoder.onnx and manifest.json>
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { OnnxEncoder } from '../shared/adapters/onnx-encoder';
import { ModelManifestSchema } from '../shared/schemas';

async function main() {
  const loaded = performance.now();
  const dir = process.argv[2]!;
  const manifest = ModelManifestSchema.parse(JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')));
  const encoder = await OnnxEncoder.create(manifest, readFileSync(join(dir, 'encoder.onnx')));
  const created = performance.now();
  const { channels, height, width } = manifest.input;
  await encoder.embed([new Float32Array(channels * height * width)]);
  const first = performance.now();
  console.log(JSON.stringify({ modulesLoadedMs: loaded, sessionCreatedMs: created, firstEmbeddingMs: first }));
}

void main();

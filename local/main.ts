/** `npm start`: the embedded stack in the foreground. */
import { resolve } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { API_ROUTES } from '../shared/api-routes';
import { parseLocalStackConfig } from '../shared/config';
import { fixMmapThreshold, loadMallocTrim, startHeapTrimming } from './heap-trim';
import { startStack } from './stack';

/**
 * How far V8's old generation may grow past what survived its last full collection before it
 * collects again, in percent. V8 picks more the cheaper its collections are: the stack keeps about
 * 50 MB alive, and through a 60,000-image ingest its heap swung between 90 and 175 MB
 * (docs/BENCHMARKS.md). At 50% a full collection comes every 25 MB or so of garbage, some 20 s of
 * ingest, and costs tens of milliseconds.
 */
const HEAP_GROWING_PERCENT = 50;

async function main(): Promise<void> {
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  // First, so that what the stack allocates from here on keeps glibc's initial thresholds.
  fixMmapThreshold();
  const config = parseLocalStackConfig(process.env);
  const stack = await startStack({ config, repoRoot: resolve(__dirname, '..') });
  const trimming = startHeapTrimming(loadMallocTrim());
  const s3 = stack.s3Endpoint;
  console.log(
    [
      '',
      `[pipeline] ready s3=${s3} api=${stack.apiUrl} data=${stack.dataDir} pid=${process.pid}`,
      `  S3   ${s3}  (path-style, any credentials; buckets: images, artifacts)`,
      `  Console  ${stack.apiUrl}/  (gallery, image, search, label queue, models)`,
      `  API  ${stack.apiUrl}  (${API_ROUTES.map((r) => `${r.method} ${r.path}`).join(', ')})`,
      `  Drop images:  aws --endpoint-url ${s3} s3 cp ./pics s3://images/ --recursive`,
      `  Query:        curl '${stack.apiUrl}/neighbors?key=<key>&k=10'`,
      '',
    ].join('\n'),
  );
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    trimming.stop();
    console.log(`[pipeline] ${signal}: stopping`);
    stack.close().then(
      () => process.exit(0),
      (err) => {
        console.error(err);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((err) => {
  console.error(`[pipeline] failed to start: ${(err as Error).message}`);
  process.exit(1);
});

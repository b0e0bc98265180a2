/** `npm start`: the embedded stack in the foreground. */
import { resolve } from 'node:path';
import { API_ROUTES } from '../shared/api-routes';
import { parseLocalStackConfig } from '../shared/config';
import { startStack } from './stack';

async function main(): Promise<void> {
  const config = parseLocalStackConfig(process.env);
  const stack = await startStack({ config, repoRoot: resolve(__dirname, '..') });
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

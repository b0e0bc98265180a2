/**
 * Only the embedded S3-compatible server (no pipeline), e.g. for the trainer's tests:
 *   npx tsx scripts/local-s3.ts --data-dir /tmp/s3 --port 0 [--buckets images,artifacts | --buckets ""]
 * Prints `s3 pid PID` (the server's own process: tsx runs it as a child) and then
 * `s3 ready http://127.0.0.1:PORT` once listening; stops on SIGTERM/SIGINT.
 */
import { LocalS3Server } from '../local/s3-server';

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const opt = (name: string, def: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : def;
  };
  const server = await LocalS3Server.start({
    dataDir: opt('data-dir', '.data/s3-only'),
    host: '127.0.0.1',
    port: Number(opt('port', '0')),
    buckets: opt('buckets', 'images,artifacts').split(',').filter(Boolean),
  });
  console.log(`s3 pid ${process.pid}`);
  console.log(`s3 ready ${server.endpoint}`);
  const stop = () => void server.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

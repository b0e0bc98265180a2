/**
 * The command line, over the HTTP API (the embedded stack by default):
 *
 *   npm run pipeline -- labels import labels.csv     key,label rows (a header row is optional)
 *   npm run pipeline -- models                       serving, candidate and history
 *   npm run pipeline -- models rollback              serve the previous version again
 *   npm run pipeline -- train [--max-minutes N]      start a training run
 *   npm run pipeline -- dead-letters [--limit N]     messages that failed every attempt, with their errors
 *   npm run pipeline -- dead-letters redrive [ingest|embed]   replay them through their queue
 *
 * --api URL (default $PIPELINE_API or http://127.0.0.1:3000)
 */
import { readFileSync } from 'node:fs';
import { parseCsv } from './csv';

const BATCH = 500;

interface Options {
  api: string;
  args: string[];
  flags: Map<string, string>;
}

function parseArgs(argv: string[]): Options {
  const flags = new Map<string, string>();
  const args: string[] = [];
  for (let i = 0; i < argv.length; i += 1) {
    const a = argv[i]!;
    if (a.startsWith('--')) {
      flags.set(a.slice(2), argv[i + 1] ?? '');
      i += 1;
    } else {
      args.push(a);
    }
  }
  return { api: (flags.get('api') ?? process.env.PIPELINE_API ?? 'http://127.0.0.1:3000').replace(/\/$/, ''), args, flags };
}

async function call(api: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${api}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

function progress(done: number, total: number, note: string): void {
  const width = 30;
  const filled = total === 0 ? width : Math.round((done / total) * width);
  const line = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} ${note}`;
  if (process.stderr.isTTY) process.stderr.write(`\r${line}`);
  else if (done === total || done % (BATCH * 10) === 0) process.stderr.write(`${line}\n`);
}

export async function importLabels(api: string, file: string): Promise<{ imported: number; unknown: string[]; invalid: string[] }> {
  const rows = parseCsv(readFileSync(file, 'utf8'));
  const first = rows[0];
  const body = first && first[0]?.trim().toLowerCase() === 'key' && first[1]?.trim().toLowerCase() === 'label' ? rows.slice(1) : rows;
  const invalid: string[] = [];
  const items: Array<{ key: string; label: string }> = [];
  body.forEach((r, i) => {
    if (r.length !== 2 || !r[0] || !r[1]) invalid.push(`line ${i + 1 + (body === rows ? 0 : 1)}: expected key,label`);
    else items.push({ key: r[0], label: r[1].trim() });
  });
  let imported = 0;
  const unknown: string[] = [];
  progress(0, items.length, 'labels');
  for (let i = 0; i < items.length; i += BATCH) {
    const batch = items.slice(i, i + BATCH);
    const res = await call(api, 'PUT', '/labels', { labels: batch });
    if (res.status === 200) {
      imported += res.json.updated;
    } else if (res.status === 404 || res.status === 400) {
      // One bad row fails its batch: send that batch's rows one by one to import the rest.
      for (const item of batch) {
        const one = await call(api, 'PUT', '/labels', item);
        if (one.status === 200) imported += 1;
        else if (one.status === 404) unknown.push(item.key);
        else invalid.push(`${item.key}: ${one.json?.error?.message ?? one.status}`);
      }
    } else {
      throw new Error(`PUT /labels answered ${res.status}: ${JSON.stringify(res.json)}`);
    }
    progress(Math.min(i + BATCH, items.length), items.length, 'labels');
  }
  if (process.stderr.isTTY) process.stderr.write('\n');
  return { imported, unknown, invalid };
}

async function main(): Promise<number> {
  const { api, args, flags } = parseArgs(process.argv.slice(2));
  const [group, action] = args;
  if (group === 'labels' && action === 'import' && args[2]) {
    const r = await importLabels(api, args[2]);
    console.log(`imported ${r.imported} labels`);
    if (r.unknown.length)
      console.log(
        `${r.unknown.length} unknown image keys, e.g. ${r.unknown
          .slice(0, 5)
          .map((k) => JSON.stringify(k))
          .join(', ')}`,
      );
    if (r.invalid.length) console.log(`${r.invalid.length} invalid rows, e.g. ${r.invalid.slice(0, 5).join('; ')}`);
    return r.unknown.length || r.invalid.length ? 1 : 0;
  }
  if (group === 'models' && (action === undefined || action === 'rollback')) {
    const res = action === 'rollback' ? await call(api, 'POST', '/models/rollback') : await call(api, 'GET', '/models');
    console.log(JSON.stringify(res.json, null, 2));
    return res.status < 400 ? 0 : 1;
  }
  if (group === 'train') {
    const minutes = flags.get('max-minutes');
    const res = await call(api, 'POST', '/train', minutes ? { maxMinutes: Number(minutes) } : undefined);
    console.log(JSON.stringify(res.json));
    return res.status < 400 ? 0 : 1;
  }
  if (group === 'dead-letters' && (action === undefined || action === 'redrive')) {
    const limit = flags.get('limit');
    const res =
      action === 'redrive'
        ? await call(api, 'POST', '/dead-letters/redrive', args[2] ? { queue: args[2] } : undefined)
        : await call(api, 'GET', `/dead-letters${limit ? `?limit=${encodeURIComponent(limit)}` : ''}`);
    console.log(JSON.stringify(res.json, null, 2));
    return res.status < 400 ? 0 : 1;
  }
  console.error(
    'usage: pipeline labels import FILE.csv | models [rollback] | train [--max-minutes N] | dead-letters [redrive [ingest|embed]] [--limit N]  [--api URL]',
  );
  return 2;
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (err) => {
      console.error(`error: ${(err as Error).message}`);
      process.exit(1);
    },
  );
}

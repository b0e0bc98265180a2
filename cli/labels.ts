/** `labels import`: key,label rows from a CSV file to PUT /labels, in batches, with progress. */
import { readFileSync } from 'node:fs';
import { type ApiClient, apiClient, errorMessage } from './api-client';
import { parseCsv } from './csv';

const BATCH = 500;

function progress(done: number, total: number, note: string): void {
  const width = 30;
  const filled = total === 0 ? width : Math.round((done / total) * width);
  const line = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} ${note}`;
  if (process.stderr.isTTY) process.stderr.write(`\r${line}`);
  else if (done === total || done % (BATCH * 10) === 0) process.stderr.write(`${line}\n`);
}

export interface ImportResult {
  imported: number;
  unknown: string[];
  invalid: string[];
}

export async function importLabels(api: ApiClient | string, file: string, options: { quiet?: boolean } = {}): Promise<ImportResult> {
  const client = typeof api === 'string' ? apiClient(api) : api;
  const rows = parseCsv(readFileSync(file, 'utf8'));
  const first = rows[0];
  const hasHeader = first?.[0]?.trim().toLowerCase() === 'key' && first[1]?.trim().toLowerCase() === 'label';
  const body = hasHeader ? rows.slice(1) : rows;
  const invalid: string[] = [];
  const items: Array<{ key: string; label: string }> = [];
  for (const [i, r] of body.entries()) {
    if (r.length !== 2 || !r[0] || !r[1]) invalid.push(`line ${i + 1 + (hasHeader ? 1 : 0)}: expected key,label`);
    else items.push({ key: r[0], label: r[1].trim() });
  }
  const show = options.quiet ? () => undefined : progress;
  let imported = 0;
  const unknown: string[] = [];
  show(0, items.length, 'labels');
  for (let i = 0; i < items.length; i += BATCH) {
    const batch = items.slice(i, i + BATCH);
    const res = await client.call('PUT', '/labels', { labels: batch });
    if (res.status === 200) {
      imported += Number((res.json as { updated?: number }).updated ?? batch.length);
    } else if (res.status === 404 || res.status === 400) {
      // One bad row fails its batch: send that batch's rows one by one to import the rest.
      for (const item of batch) {
        const one = await client.call('PUT', '/labels', item);
        if (one.status === 200) imported += 1;
        else if (one.status === 404) unknown.push(item.key);
        else invalid.push(`${item.key}: ${errorMessage(one)}`);
      }
    } else {
      throw new Error(`PUT /labels answered ${res.status}: ${errorMessage(res)}`);
    }
    show(Math.min(i + BATCH, items.length), items.length, 'labels');
  }
  if (process.stderr.isTTY && !options.quiet) process.stderr.write('\n');
  return { imported, unknown, invalid };
}

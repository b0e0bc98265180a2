/**
 * `models import <encoder.onnx> --input-size N|HxW ...`: uploads the ONNX (and optional weights) to
 * the artifacts bucket under imports/<importId>/, asks the API to import it (POST /models/import:
 * validated at once, then evaluated and published by an import job), and follows the job to its end.
 */
import { stat } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import type { ApiClient, ApiReply } from './api-client';
import { s3ClientFor, uploadFile } from './upload';

export interface ImportOptions {
  onnxPath: string;
  inputSize: string;
  mean?: number[];
  std?: number[];
  resize?: string;
  weightsPath?: string;
  arch?: string;
  artifactsBucket: string;
  s3Endpoint?: string;
  wait: boolean;
  pollMs?: number;
  timeoutMs?: number;
}

export interface ImportOutcome {
  reply: ApiReply;
  importId: string;
  run?: { state: string; version?: string; gate?: { passed: boolean; reasons: string[]; rule?: string }; error?: string };
}

export function parseTriple(value: string | undefined, flag: string): number[] | undefined {
  if (value === undefined) return undefined;
  const parts = value.split(',').map((v) => Number(v.trim()));
  if (parts.length < 1 || parts.length > 3 || parts.some((v) => !Number.isFinite(v))) throw new Error(`--${flag} takes 1 or 3 numbers, e.g. 0.485,0.456,0.406`);
  return parts;
}

export function importIdFor(onnxPath: string, now = new Date()): string {
  const stem = basename(onnxPath, extname(onnxPath))
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 60);
  return `${stem || 'encoder'}-${now
    .toISOString()
    .replace(/[-:.TZ]/g, '')
    .slice(0, 14)}`;
}

export async function importModel(api: ApiClient, options: ImportOptions, progress: (line: string) => void = () => {}): Promise<ImportOutcome> {
  for (const path of [options.onnxPath, options.weightsPath]) {
    if (path && !(await stat(path).catch(() => undefined))?.isFile()) throw new Error(`${path}: no such file`);
  }
  const importId = importIdFor(options.onnxPath);
  const source = `imports/${importId}/encoder.onnx`;
  const weights = options.weightsPath ? `imports/${importId}/weights.pt` : undefined;
  const client = s3ClientFor({ endpoint: options.s3Endpoint });
  try {
    progress(`uploading ${options.onnxPath} to s3://${options.artifactsBucket}/${source}`);
    await uploadFile(client, options.artifactsBucket, source, options.onnxPath, 'application/octet-stream');
    if (options.weightsPath && weights) await uploadFile(client, options.artifactsBucket, weights, options.weightsPath, 'application/octet-stream');
  } finally {
    client.destroy();
  }
  const body = {
    source,
    inputSize: options.inputSize,
    ...(options.mean ? { mean: options.mean } : {}),
    ...(options.std ? { std: options.std } : {}),
    ...(options.resize ? { resize: options.resize } : {}),
    ...(weights ? { weights, arch: options.arch } : {}),
  };
  const reply = await api.call('POST', '/models/import', body);
  if (reply.status !== 202 || !options.wait) return { reply, importId };
  const jobId = String((reply.json as { jobId: string }).jobId);
  const deadline = Date.now() + (options.timeoutMs ?? 60 * 60_000);
  let lastPhase = '';
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, options.pollMs ?? 2000));
    const models = await api.call('GET', '/models');
    const run = ((models.json as { runs?: Array<Record<string, unknown>> }).runs ?? []).find((r) => r.jobId === jobId);
    if (!run) continue;
    const phase = String(run.phase ?? run.state);
    if (phase !== lastPhase) progress(`import job ${jobId}: ${phase}`);
    lastPhase = phase;
    if (run.state !== 'running') return { reply, importId, run: run as ImportOutcome['run'] };
  }
  throw new Error(`import job ${jobId} did not finish in time; see npm run pipeline -- models`);
}

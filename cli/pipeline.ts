/**
 * The command line, over the HTTP API (the embedded stack by default). `npm run pipeline -- --help`
 * lists the commands, `npm run pipeline -- <command> --help` explains one. Exit codes: 0 done,
 * 1 the API refused or part of the work failed, 2 the command line was wrong.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { SEARCH_MAX_IMAGE_BYTES } from '../functions/api/http';
import { type ApiClient, type ApiReply, apiClient, errorMessage } from './api-client';
import { importLabels } from './labels';
import { ApiSigner, regionOf } from './sigv4';
import { uploadImages } from './upload';
import { importModel, parseTriple } from './import-model';
import { startConsoleProxy } from './console-proxy';
import { buildConsoleAssets } from '../local/console-assets';

export { importLabels } from './labels';

const DEFAULT_API = 'http://127.0.0.1:3000';
const DEFAULT_LOCAL_S3 = 'http://127.0.0.1:4566';

type Options = NonNullable<ParseArgsConfig['options']>;
type Values = Record<string, string | boolean | undefined>;

interface Command {
  /** Words that name the command, e.g. ['dead-letters', 'redrive']. */
  words: string[];
  args: string;
  summary: string;
  details?: string;
  options?: Options;
  optionHelp?: Array<[flag: string, text: string]>;
  /** How many positional arguments (after the command words) it takes. */
  positionals: [min: number, max: number];
  run(ctx: { api: ApiClient; values: Values; positionals: string[]; json: boolean; deployed: boolean; signer?: ApiSigner }): Promise<number>;
}

class UsageError extends Error {}

function report(reply: ApiReply, json: boolean, human: (body: Record<string, unknown>) => string): number {
  if (json) console.log(JSON.stringify(reply.json, null, 2));
  else if (reply.status < 400) console.log(human((reply.json ?? {}) as Record<string, unknown>));
  if (reply.status >= 400) {
    console.error(`error: ${errorMessage(reply)}`);
    return 1;
  }
  return 0;
}

function positiveInt(value: string | boolean | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${flag} must be a positive whole number, got ${JSON.stringify(value)}`);
  return n;
}

const SEARCH_TYPES: Record<string, string> = {
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
  gif: 'image/gif',
  avif: 'image/avif',
  tif: 'image/tiff',
  tiff: 'image/tiff',
};

const COMMANDS: Command[] = [
  {
    words: ['upload'],
    args: '<dir|file> [--bucket NAME] [--prefix P]',
    summary: 'upload image files into the images bucket (multipart for large files), with progress',
    details:
      'Keys are the paths relative to the directory, under --prefix. Against the embedded stack the bucket is `images` at ' +
      `${DEFAULT_LOCAL_S3} (--s3-endpoint to change); with --endpoint (a deployment) give the images bucket's name (a stack output) with --bucket: the upload goes to Amazon S3 with your AWS credentials.`,
    options: { bucket: { type: 'string' }, prefix: { type: 'string' }, 's3-endpoint': { type: 'string' }, concurrency: { type: 'string' } },
    optionHelp: [
      ['--bucket NAME', 'the images bucket (default `images` locally; required with --endpoint)'],
      ['--prefix P', 'key prefix, e.g. holiday/2026'],
      ['--s3-endpoint URL', `an S3-compatible endpoint (default ${DEFAULT_LOCAL_S3} without --endpoint, Amazon S3 with it)`],
      ['--concurrency N', 'files uploaded at once (default 4)'],
    ],
    positionals: [1, 1],
    run: async ({ values, positionals, json, deployed }) => {
      const bucket = values.bucket === undefined ? (deployed ? undefined : 'images') : String(values.bucket);
      if (!bucket) throw new UsageError('--bucket is required with --endpoint: the images bucket of the deployment (stack output ImagesBucket)');
      const endpoint = values['s3-endpoint'] !== undefined ? String(values['s3-endpoint']) : deployed ? undefined : DEFAULT_LOCAL_S3;
      const r = await uploadImages(
        positionals[0]!,
        {
          bucket,
          endpoint,
          prefix: values.prefix === undefined ? undefined : String(values.prefix),
          concurrency: positiveInt(values.concurrency, 'concurrency'),
        },
        json ? undefined : (line) => process.stderr.write(`\r${line}`),
      );
      if (json) console.log(JSON.stringify(r, null, 2));
      else {
        process.stderr.write('\n');
        console.log(`uploaded ${r.uploaded} images (${(r.bytes / 1048576).toFixed(1)} MiB) to s3://${bucket}/${values.prefix ?? ''}`);
        if (r.skipped.length) console.log(`skipped ${r.skipped.length} files that are not images, e.g. ${r.skipped.slice(0, 3).join(', ')}`);
        for (const f of r.failed.slice(0, 10)) console.error(`failed: ${f.file}: ${f.error}`);
      }
      return r.failed.length > 0 ? 1 : 0;
    },
  },
  {
    words: ['search'],
    args: '<image> [--k N] [--label L]',
    summary: 'the nearest neighbours of an image file (POST /search)',
    details: `The image is sent as it is; at most ${SEARCH_MAX_IMAGE_BYTES} bytes (4 MiB, what fits Lambda's 6 MB payload once base64-encoded).`,
    options: { k: { type: 'string' }, label: { type: 'string' } },
    optionHelp: [
      ['--k N', 'neighbours (1-100, default 10)'],
      ['--label L', 'only images with this label or pseudo-label'],
    ],
    positionals: [1, 1],
    run: async ({ api, values, positionals, json }) => {
      const file = positionals[0]!;
      const bytes = await readFile(file).catch((err: NodeJS.ErrnoException) => {
        throw new UsageError(`${file}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`);
      });
      if (bytes.length > SEARCH_MAX_IMAGE_BYTES) {
        console.error(
          `error: ${file} is ${bytes.length} bytes; search takes images of at most ${SEARCH_MAX_IMAGE_BYTES} bytes (4 MiB): resize or recompress it`,
        );
        return 1;
      }
      const type = SEARCH_TYPES[file.split('.').pop()?.toLowerCase() ?? ''] ?? 'application/octet-stream';
      const k = positiveInt(values.k, 'k');
      const query = new URLSearchParams({ ...(k ? { k: String(k) } : {}), ...(values.label !== undefined ? { label: String(values.label) } : {}) }).toString();
      return report(
        await api.call('POST', `/search${query ? `?${query}` : ''}`, { bytes, contentType: type === 'application/octet-stream' ? 'image/jpeg' : type }),
        json,
        (b) =>
          ((b.neighbors as Array<{ key: string; distance: number; label?: string; pseudoLabel?: string }>) ?? [])
            .map((n) => `${n.distance.toFixed(4)}  ${n.key}${n.label ? `  [${n.label}]` : n.pseudoLabel ? `  (${n.pseudoLabel})` : ''}`)
            .join('\n'),
      );
    },
  },
  {
    words: ['health'],
    args: '',
    summary: 'serving model and counts of indexed, pending and quarantined images',
    positionals: [0, 0],
    run: async ({ api, json }) =>
      report(
        await api.call('GET', '/health'),
        json,
        (b) => `${b.status}: model ${b.servingModel}, ${b.indexed} indexed, ${b.pending} pending, ${b.quarantined} quarantined`,
      ),
  },
  {
    words: ['labels', 'import'],
    args: '<file.csv>',
    summary: 'label images from key,label rows (a header row is optional)',
    details: 'Rows are sent in batches of 500; a batch with an unknown key or a bad label is retried row by row, so the rest still lands.',
    positionals: [1, 1],
    run: async ({ api, positionals, json }) => {
      const r = await importLabels(api, positionals[0]!, { quiet: json });
      if (json) console.log(JSON.stringify(r, null, 2));
      else {
        console.log(`imported ${r.imported} labels`);
        if (r.unknown.length)
          console.log(
            `${r.unknown.length} unknown image keys, e.g. ${r.unknown
              .slice(0, 5)
              .map((k) => JSON.stringify(k))
              .join(', ')}`,
          );
        if (r.invalid.length) console.log(`${r.invalid.length} invalid rows, e.g. ${r.invalid.slice(0, 5).join('; ')}`);
      }
      return r.unknown.length || r.invalid.length ? 1 : 0;
    },
  },
  {
    words: ['models'],
    args: '',
    summary: 'the serving model, a candidate being rolled out, history and recent training runs',
    positionals: [0, 0],
    run: async ({ api, json }) =>
      report(await api.call('GET', '/models'), json, (b) => {
        const serving = b.serving as { version?: string; metrics?: Record<string, unknown> } | null;
        const candidate = b.candidate as { version?: string; rollout?: { done: number; total: number } } | undefined;
        const history = (b.history as unknown[] | undefined) ?? [];
        return [
          `serving   ${serving?.version ?? 'none'}${serving?.metrics ? ` ${JSON.stringify(serving.metrics)}` : ''}`,
          `candidate ${candidate?.version ?? 'none'}${candidate?.rollout ? ` (re-embedded ${candidate.rollout.done}/${candidate.rollout.total})` : ''}`,
          `history   ${history.length} version(s); --json for everything`,
        ].join('\n');
      }),
  },
  {
    words: ['models', 'rollback'],
    args: '',
    summary: 'serve the previous version again',
    positionals: [0, 0],
    run: async ({ api, json }) => report(await api.call('POST', '/models/rollback'), json, (b) => `serving ${b.serving} (was ${b.previous})`),
  },
  {
    words: ['models', 'import'],
    args: '<encoder.onnx> --input-size N|HxW [--mean r,g,b] [--std r,g,b] [--resize cover|contain|fill] [--weights <state_dict.pt> --arch <name>]',
    summary: 'publish your own encoder: validated, gated against the serving model, then rolled out blue/green',
    details:
      'The ONNX (one float32 input [batch, channels, height, width], one 2-D float output) is uploaded to the artifacts bucket under ' +
      'imports/<id>/, validated by the API in onnxruntime, evaluated by an import job on the held-out labels with the training gate, ' +
      'published as the next version and rolled out. Pixels reach it as (pixel / 255 - mean) / std, RGB, resized with --resize ' +
      "(default cover). With --weights and --arch (the state dict of the same network as one of the trainer's backbones: " +
      'small-resnet, resnet18, resnet50, vit-s16), later training runs continue from it. Waits for the job unless --no-wait.',
    options: {
      'input-size': { type: 'string' },
      mean: { type: 'string' },
      std: { type: 'string' },
      resize: { type: 'string' },
      weights: { type: 'string' },
      arch: { type: 'string' },
      bucket: { type: 'string' },
      's3-endpoint': { type: 'string' },
      'no-wait': { type: 'boolean' },
    },
    optionHelp: [
      ['--input-size N|HxW', "the model's input, e.g. 224 or 224x160 (at most the working resolution, WORKING_SIZE)"],
      ['--mean r,g,b / --std r,g,b', 'normalisation of pixel / 255 (default 0 and 1; ImageNet models: 0.485,0.456,0.406 and 0.229,0.224,0.225)'],
      ['--resize cover|contain|fill', 'how an image is fitted to the input (default cover: centre crop)'],
      ['--weights FILE --arch NAME', 'PyTorch weights of the same network, to continue training it'],
      ['--bucket NAME', 'the artifacts bucket (default `artifacts` locally; required with --endpoint)'],
      ['--s3-endpoint URL', `an S3-compatible endpoint (default ${DEFAULT_LOCAL_S3} without --endpoint, Amazon S3 with it)`],
      ['--no-wait', 'return once the import job has started'],
    ],
    positionals: [1, 1],
    run: async ({ api, values, positionals, json, deployed }) => {
      if (values['input-size'] === undefined) throw new UsageError('--input-size is required: the input the model takes, e.g. 224 or 224x160');
      if ((values.weights === undefined) !== (values.arch === undefined)) throw new UsageError('--weights and --arch go together');
      const bucket = values.bucket === undefined ? (deployed ? undefined : 'artifacts') : String(values.bucket);
      if (!bucket) throw new UsageError('--bucket is required with --endpoint: the artifacts bucket of the deployment (stack output ArtifactsBucket)');
      let mean: number[] | undefined;
      let std: number[] | undefined;
      try {
        mean = parseTriple(values.mean as string | undefined, 'mean');
        std = parseTriple(values.std as string | undefined, 'std');
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
      const outcome = await importModel(
        api,
        {
          onnxPath: positionals[0]!,
          inputSize: String(values['input-size']),
          mean,
          std,
          resize: values.resize === undefined ? undefined : String(values.resize),
          weightsPath: values.weights === undefined ? undefined : String(values.weights),
          arch: values.arch === undefined ? undefined : String(values.arch),
          artifactsBucket: bucket,
          s3Endpoint: values['s3-endpoint'] !== undefined ? String(values['s3-endpoint']) : deployed ? undefined : DEFAULT_LOCAL_S3,
          wait: !values['no-wait'],
        },
        json ? undefined : (line) => process.stderr.write(`${line}\n`),
      );
      if (!outcome.run) return report(outcome.reply, json, (b) => `import job ${b.jobId} started (import ${outcome.importId})`);
      const run = outcome.run;
      if (json) console.log(JSON.stringify({ importId: outcome.importId, ...run }, null, 2));
      else if (run.state === 'published') console.log(`${run.version} published and rolling out: ${run.gate?.reasons.join('; ')}`);
      else if (run.state === 'rejected') console.log(`${run.version} rejected by the gate: ${run.gate?.reasons.join('; ')}`);
      else console.error(`import failed: ${run.error ?? run.state}`);
      return run.state === 'published' ? 0 : 1;
    },
  },
  {
    words: ['train'],
    args: '[--max-minutes N]',
    summary: 'start a training run now',
    options: { 'max-minutes': { type: 'string' } },
    optionHelp: [['--max-minutes N', 'time budget of the run in minutes']],
    positionals: [0, 0],
    run: async ({ api, values, json }) => {
      const maxMinutes = positiveInt(values['max-minutes'], 'max-minutes');
      return report(await api.call('POST', '/train', maxMinutes ? { maxMinutes } : undefined), json, (b) => `training run ${b.jobId} started`);
    },
  },
  {
    words: ['console'],
    args: '--endpoint URL [--port 3000]',
    summary: 'serve the web console on 127.0.0.1 for a deployed API, signing its calls with your AWS credentials',
    details:
      'The embedded stack serves the console itself (http://127.0.0.1:3000/). For a deployment, this serves the same console ' +
      'locally and forwards its API calls to --endpoint, each signed with SigV4 from the default AWS credential chain; the API stays ' +
      'IAM-authorised and closed to browsers. Only pages opened at the printed address can use it. Ctrl-C stops it.',
    options: { port: { type: 'string' }, host: { type: 'string' } },
    optionHelp: [
      ['--port N', 'local port (default 3000; 0 picks a free one)'],
      ['--host H', 'local address to listen on (default 127.0.0.1)'],
    ],
    positionals: [0, 0],
    run: async ({ api, values, signer }) => {
      if (!signer) throw new UsageError('console needs --endpoint (a deployed API); the embedded stack serves the console at http://127.0.0.1:3000/');
      const port = values.port === undefined ? 3000 : Number(values.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port must be a port number, got ${JSON.stringify(values.port)}`);
      const proxy = await startConsoleProxy({
        endpoint: api.url,
        signer,
        assets: await buildConsoleAssets(),
        host: values.host === undefined ? undefined : String(values.host),
        port,
        log: (line) => console.error(line),
      });
      console.log(`console for ${api.url} at ${proxy.url}/ (requests signed with your AWS credentials; Ctrl-C stops)`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await proxy.close();
      return 0;
    },
  },
  {
    words: ['dead-letters'],
    args: '[--limit N]',
    summary: 'messages that failed every attempt, with their last error',
    options: { limit: { type: 'string' } },
    optionHelp: [['--limit N', 'messages shown per queue (default 20)']],
    positionals: [0, 0],
    run: async ({ api, values, json }) => {
      const limit = positiveInt(values.limit, 'limit');
      return report(await api.call('GET', `/dead-letters${limit ? `?limit=${limit}` : ''}`), json, (b) =>
        ((b.queues as Array<{ queue: string; count: number; messages: Array<{ messageId: string; error?: string }> }>) ?? [])
          .map((q) => [`${q.queue}: ${q.count}`, ...q.messages.map((m) => `  ${m.messageId}  ${m.error ?? ''}`)].join('\n'))
          .join('\n'),
      );
    },
  },
  {
    words: ['dead-letters', 'redrive'],
    args: '[ingest|embed]',
    summary: 'move dead letters back to their queue (one queue, or both)',
    positionals: [0, 1],
    run: async ({ api, positionals, json }) => {
      const queue = positionals[0];
      if (queue !== undefined && queue !== 'ingest' && queue !== 'embed') throw new UsageError(`unknown queue ${JSON.stringify(queue)}: ingest or embed`);
      return report(await api.call('POST', '/dead-letters/redrive', queue ? { queue } : undefined), json, (b) => `redriven ${JSON.stringify(b.redriven)}`);
    },
  },
];

const GLOBAL_OPTIONS: Options = {
  api: { type: 'string' },
  endpoint: { type: 'string' },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
};
const GLOBAL_HELP: Array<[string, string]> = [
  ['--api URL', `the embedded stack's API (default $PIPELINE_API or ${DEFAULT_API}), unsigned`],
  [
    '--endpoint URL',
    'a deployed API (https://<id>.execute-api.<region>.amazonaws.com/v1, or $PIPELINE_ENDPOINT): requests are signed (SigV4) with your AWS credentials',
  ],
  ['--json', 'print the API answer as JSON'],
  ['-h, --help', 'explain the command'],
];

function optionLines(help: Array<[string, string]>): string[] {
  const width = Math.max(...help.map(([flag]) => flag.length));
  return help.map(([flag, text]) => `  ${flag.padEnd(width)}  ${text}`);
}

function usage(command?: Command): string {
  if (!command) {
    const width = Math.max(...COMMANDS.map((c) => `${c.words.join(' ')} ${c.args}`.length));
    return [
      'usage: npm run pipeline -- <command> [options]',
      '',
      'commands:',
      ...COMMANDS.map((c) => `  ${`${c.words.join(' ')} ${c.args}`.padEnd(width)}  ${c.summary}`),
      '',
      'options:',
      ...optionLines(GLOBAL_HELP),
      '',
      'npm run pipeline -- <command> --help explains one command.',
    ].join('\n');
  }
  return [
    `usage: npm run pipeline -- ${command.words.join(' ')} ${command.args}`.trimEnd(),
    '',
    command.summary,
    ...(command.details ? [command.details] : []),
    '',
    'options:',
    ...optionLines([...(command.optionHelp ?? []), ...GLOBAL_HELP]),
  ].join('\n');
}

/** The command named by the longest matching run of leading positional words. */
function findCommand(positionals: string[]): Command | undefined {
  return [...COMMANDS].sort((a, b) => b.words.length - a.words.length).find((c) => c.words.every((w, i) => positionals[i] === w));
}

export async function main(argv: string[]): Promise<number> {
  const loose = parseArgs({ args: argv, options: GLOBAL_OPTIONS, allowPositionals: true, strict: false });
  const command = findCommand(loose.positionals);
  if (!command) {
    if (loose.values.help || loose.positionals.length === 0) {
      console.log(usage());
      return loose.values.help ? 0 : 2;
    }
    console.error(`unknown command ${JSON.stringify(loose.positionals.join(' '))}\n\n${usage()}`);
    return 2;
  }
  try {
    const { values, positionals } = parseArgs({ args: argv, options: { ...GLOBAL_OPTIONS, ...command.options }, allowPositionals: true, strict: true });
    if (values.help) {
      console.log(usage(command));
      return 0;
    }
    const rest = positionals.slice(command.words.length);
    const [min, max] = command.positionals;
    if (rest.length < min || rest.length > max) throw new UsageError(`${command.words.join(' ')} takes ${command.args || 'no arguments'}`);
    const endpoint = values.endpoint ?? (values.api === undefined ? process.env.PIPELINE_ENDPOINT : undefined);
    if (endpoint !== undefined && values.api !== undefined) throw new UsageError('give --api (the embedded stack) or --endpoint (a deployment), not both');
    let api: ApiClient;
    let signer: ApiSigner | undefined;
    if (endpoint !== undefined) {
      let url: URL;
      try {
        url = new URL(String(endpoint));
      } catch {
        throw new UsageError(`--endpoint must be a URL such as https://<id>.execute-api.<region>.amazonaws.com/v1, got ${JSON.stringify(endpoint)}`);
      }
      signer = new ApiSigner(regionOf(url.toString()));
      api = apiClient(url.toString(), signer);
    } else {
      api = apiClient(String(values.api ?? process.env.PIPELINE_API ?? DEFAULT_API));
    }
    return await command.run({ api, values: values as Values, positionals: rest, json: Boolean(values.json), deployed: endpoint !== undefined, signer });
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (err instanceof UsageError || code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`${(err as Error).message}\n\n${usage(command)}`);
      return 2;
    }
    throw err;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err) => {
      console.error(`error: ${(err as Error).message}`);
      process.exit(1);
    },
  );
}

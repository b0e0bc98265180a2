/**
 * The command line, over the HTTP API (the embedded stack by default). `npm run pipeline -- --help`
 * lists the commands, `npm run pipeline -- <command> --help` explains one. Exit codes: 0 done,
 * 1 the API refused or part of the work failed, 2 the command line was wrong.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { type ApiClient, type ApiReply, apiClient, errorMessage } from './api-client';
import { importLabels } from './labels';

export { importLabels } from './labels';

const DEFAULT_API = 'http://127.0.0.1:3000';

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
  run(ctx: { api: ApiClient; values: Values; positionals: string[]; json: boolean }): Promise<number>;
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

const COMMANDS: Command[] = [
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
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
};
const GLOBAL_HELP: Array<[string, string]> = [
  ['--api URL', `the pipeline API (default $PIPELINE_API or ${DEFAULT_API})`],
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
    const api = apiClient(String(values.api ?? process.env.PIPELINE_API ?? DEFAULT_API));
    return await command.run({ api, values: values as Values, positionals: rest, json: Boolean(values.json) });
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

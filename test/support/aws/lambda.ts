/**
 * Lambda, as far as the harness needs it: the functions bundled as for Lambda (esbuild, CommonJS,
 * minified, sharp and onnxruntime-node left to node_modules, which here hold this machine's
 * builds), each run in its own process with the environment, memory and timeout of its
 * AWS::Lambda::Function resource, and SQS event source mappings that poll, batch, delete and
 * retry as Lambda's do, configured from the AWS::Lambda::EventSourceMapping resources.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DeleteMessageBatchCommand, ReceiveMessageCommand, type SQSClient, type Message } from '@aws-sdk/client-sqs';
import { build } from 'esbuild';
import { AWS_LIMITS } from '../../../shared/aws-limits';
import { type Deployment, REGION } from './cfn';

const REPO = resolve(__dirname, '../../..');

/**
 * Functions whose package carries sharp and onnxruntime-node as node_modules (infra/lib/stateless-stack.ts,
 * `nativeModules`); the others are packaged without them, as in Lambda.
 */
const NATIVE_MODULE_FUNCTIONS = new Set(['augment', 'embed', 'api']);
let bundleRoot: string | undefined;

/**
 * Bundles `functions/<name>/index.ts` like the CDK construct does (same format, minification and
 * externals) into a directory of its own outside the repository, holding only what its Lambda
 * package holds: a function that reaches sharp or onnxruntime-node without them in its package fails
 * to load here as it would in Lambda, instead of finding them in the repository's node_modules.
 */
export async function bundleFunction(name: string): Promise<string> {
  bundleRoot ??= mkdtempSync(join(tmpdir(), 'aws-harness-bundles-'));
  const dir = join(bundleRoot, name);
  mkdirSync(join(dir, 'node_modules'), { recursive: true });
  if (NATIVE_MODULE_FUNCTIONS.has(name)) {
    for (const pkg of ['sharp', 'onnxruntime-node']) symlinkSync(join(REPO, 'node_modules', pkg), join(dir, 'node_modules', pkg), 'dir');
  }
  const outfile = join(dir, 'index.js');
  await build({
    entryPoints: [join(REPO, 'functions', name, 'index.ts')],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: `node${process.versions.node.split('.')[0]}`,
    minify: true,
    sourcemap: true,
    external: ['sharp', 'onnxruntime-node'],
    outfile,
    logLevel: 'error',
  });
  return outfile;
}

export interface Invocation {
  ok: boolean;
  ms: number;
  initMs?: number;
  at: number;
}

export interface InvokeResult {
  result?: unknown;
  error?: { errorType?: string; errorMessage?: string; stack?: string };
  ms: number;
}

/** One function: one execution environment (invocations run one at a time), restarted after a timeout. */
export class LambdaFunction {
  readonly invocations: Invocation[] = [];
  readonly timeoutMs: number;
  readonly memoryMb: number;
  private child?: ChildProcess;
  private chain: Promise<unknown> = Promise.resolve();
  private seq = 0;
  logs = '';

  constructor(
    readonly name: string,
    readonly logicalId: string,
    readonly roleLogicalId: string,
    private readonly bundle: string,
    private readonly env: Record<string, string>,
    props: { Timeout?: number; MemorySize?: number },
  ) {
    this.timeoutMs = (props.Timeout ?? 3) * 1000;
    this.memoryMb = props.MemorySize ?? 128;
  }

  invoke(event: unknown): Promise<InvokeResult> {
    const run = this.chain.then(() => this.invokeNow(event));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async spawn(): Promise<ChildProcess> {
    if (this.child && this.child.exitCode === null) return this.child;
    const child = fork(join(__dirname, 'lambda-host.js'), [this.bundle], { env: this.env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'], execArgv: [] });
    child.stdout!.on('data', (d: Buffer) => (this.logs = (this.logs + d.toString()).slice(-200_000)));
    child.stderr!.on('data', (d: Buffer) => (this.logs = (this.logs + d.toString()).slice(-200_000)));
    await new Promise<void>((r, reject) => {
      child.once('message', () => r());
      child.once('exit', (code) => reject(new Error(`${this.name} runtime exited with ${code}: ${this.logs.slice(-2000)}`)));
    });
    this.child = child;
    return child;
  }

  private async invokeNow(event: unknown): Promise<InvokeResult> {
    const payload = JSON.stringify(event);
    if (Buffer.byteLength(payload) > AWS_LIMITS.lambda.syncPayloadBytes) {
      // Lambda refuses the invocation itself (RequestEntityTooLargeException); the function never runs.
      return {
        error: {
          errorType: 'RequestEntityTooLargeException',
          errorMessage: `Request must be smaller than ${AWS_LIMITS.lambda.syncPayloadBytes} bytes for the InvokeFunction operation`,
        },
        ms: 0,
      };
    }
    const child = await this.spawn();
    this.seq += 1;
    const id = `inv-${this.name}-${this.seq}`;
    const at = Date.now();
    const result = await new Promise<InvokeResult & { initMs?: number }>((resolveResult) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        resolveResult({ error: { errorType: 'Sandbox.Timedout', errorMessage: `Task timed out after ${this.timeoutMs / 1000} seconds` }, ms: this.timeoutMs });
      }, this.timeoutMs);
      const onMessage = (msg: { type: string; id: string } & InvokeResult & { initMs?: number }) => {
        if (msg.type !== 'result' || msg.id !== id) return;
        clearTimeout(timer);
        child.off('message', onMessage);
        resolveResult(msg);
      };
      child.on('message', onMessage);
      child.send({ type: 'invoke', id, event: JSON.parse(payload), deadline: Date.now() + this.timeoutMs });
    });
    this.invocations.push({ ok: !result.error, ms: result.ms, ...(result.initMs === undefined ? {} : { initMs: result.initMs }), at });
    return result;
  }

  async stop() {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
}

/** Lambda's SQS poller for one event source mapping, acting with the function's execution role. */
export class SqsEventSourceMapping {
  private running = false;
  private loop?: Promise<void>;
  readonly batchSize: number;
  readonly windowMs: number;
  readonly reportsItemFailures: boolean;
  readonly queueArn: string;

  constructor(
    private readonly fn: LambdaFunction,
    private readonly sqs: SQSClient,
    mapping: Record<string, unknown>,
    private readonly queueUrl: string,
  ) {
    this.batchSize = Number(mapping.BatchSize ?? 10);
    this.windowMs = Number(mapping.MaximumBatchingWindowInSeconds ?? 0) * 1000;
    this.reportsItemFailures = ((mapping.FunctionResponseTypes as string[] | undefined) ?? []).includes('ReportBatchItemFailures');
    this.queueArn = String(mapping.EventSourceArn);
  }

  start() {
    this.running = true;
    this.loop = this.poll();
  }

  async stop() {
    this.running = false;
    await this.loop;
    this.sqs.destroy();
  }

  private async poll() {
    while (this.running) {
      const batch: Message[] = [];
      const deadline = Date.now() + this.windowMs;
      while (this.running && batch.length < this.batchSize) {
        const waitSeconds = batch.length === 0 ? 1 : 0;
        const out = await this.sqs
          .send(
            new ReceiveMessageCommand({
              QueueUrl: this.queueUrl,
              MaxNumberOfMessages: Math.min(AWS_LIMITS.sqs.maxBatchEntries, this.batchSize - batch.length),
              WaitTimeSeconds: waitSeconds,
              MessageSystemAttributeNames: ['All'],
              MessageAttributeNames: ['All'],
            }),
          )
          .catch(() => ({ Messages: [] as Message[] }));
        batch.push(...(out.Messages ?? []));
        if (batch.length > 0 && Date.now() >= deadline) break;
        if (batch.length > 0 && (out.Messages ?? []).length === 0) await new Promise((r) => setTimeout(r, Math.min(100, Math.max(0, deadline - Date.now()))));
      }
      if (batch.length === 0) continue;
      const event = {
        Records: batch.map((m) => ({
          messageId: m.MessageId,
          receiptHandle: m.ReceiptHandle,
          body: m.Body,
          attributes: m.Attributes ?? {},
          messageAttributes: m.MessageAttributes ?? {},
          md5OfBody: m.MD5OfBody,
          eventSource: 'aws:sqs',
          eventSourceARN: this.queueArn,
          awsRegion: REGION,
        })),
      };
      const out = await this.fn.invoke(event);
      if (out.error) continue; // the whole batch becomes visible again after the visibility timeout
      const failed = new Set(
        this.reportsItemFailures
          ? ((out.result as { batchItemFailures?: Array<{ itemIdentifier: string }> } | null)?.batchItemFailures ?? []).map((f) => f.itemIdentifier)
          : [],
      );
      const done = batch.filter((m) => !failed.has(m.MessageId!));
      for (let i = 0; i < done.length; i += AWS_LIMITS.sqs.maxBatchEntries) {
        const chunk = done.slice(i, i + AWS_LIMITS.sqs.maxBatchEntries);
        await this.sqs.send(
          new DeleteMessageBatchCommand({ QueueUrl: this.queueUrl, Entries: chunk.map((m, j) => ({ Id: String(j), ReceiptHandle: m.ReceiptHandle! })) }),
        );
      }
    }
  }
}

/** The function's environment as Lambda sets it: the template's variables, the runtime's own, and the role's credentials. */
export function lambdaEnvironment(deployment: Deployment, logicalId: string, endpoint: string, credentials: { accessKeyId: string; secretAccessKey: string }) {
  const props = deployment.resource(logicalId).Properties!;
  const vars = deployment.resolve((props.Environment as { Variables?: Record<string, unknown> } | undefined)?.Variables ?? {}) as Record<string, string>;
  const name = deployment.ref(logicalId);
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/tmp',
    TZ: 'UTC',
    ...vars,
    AWS_REGION: REGION,
    AWS_DEFAULT_REGION: REGION,
    AWS_ACCESS_KEY_ID: credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
    AWS_SESSION_TOKEN: 'harness-session',
    AWS_ENDPOINT_URL: endpoint,
    AWS_LAMBDA_FUNCTION_NAME: name,
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(props.MemorySize ?? 128),
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs24.x',
    HARNESS_FUNCTION_ARN: deployment.attr(logicalId, 'Arn'),
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
}

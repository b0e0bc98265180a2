/**
 * The AWS composition, run here: moto (S3, SQS, S3 Vectors over the real wire protocols) behind
 * the harness's AWS endpoint (IAM, S3's 403 rule, event notifications, documented limits), the
 * four functions bundled as for Lambda in their own processes with their template environments
 * and roles, Lambda's SQS pollers, API Gateway, the lifecycle schedule and the trainer's ECS task
 * (run locally under the task role). Everything is read from the synthesized templates.
 *
 * Time is compressed in one place: queue visibility timeouts are the template's divided by
 * `timeScale` (Lambda would wait minutes before a retry; the assertions on the template's own
 * values are in the infra unit tests).
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { CreateBucketCommand, PutBucketVersioningCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateVectorBucketCommand, S3VectorsClient } from '@aws-sdk/client-s3vectors';
import { CreateQueueCommand, SQSClient } from '@aws-sdk/client-sqs';
import { ApiSigner } from '../../../cli/sigv4';
import { startMoto, type MotoServer } from '../moto';
import { Deployment, queueUrlOf, REGION, synthesize } from './cfn';
import { ADMIN_ACCESS_KEY, AwsGateway } from './gateway';
import { IamPolicies } from './iam';
import { bundleFunction, lambdaEnvironment, LambdaFunction, SqsEventSourceMapping } from './lambda';
import { RestApiStandIn } from './rest-api';

const REPO = resolve(__dirname, '../../..');
export const FUNCTIONS = ['augment', 'embed', 'api', 'lifecycle'] as const;
export type FunctionName = (typeof FUNCTIONS)[number];

export interface HarnessOptions {
  /** The `pipeline` CDK context (infra/lib/config.ts). */
  pipeline?: Record<string, unknown>;
  timeScale?: number;
  /** Extra environment for the trainer task (e.g. a small CPU configuration). */
  trainerEnv?: Record<string, string>;
  /** Trainer commands the ECS stand-in runs (others are recorded as started and left running). @default ['init'] */
  executeTrainerCommands?: string[];
}

export interface TrainerTask {
  command: string[];
  done: Promise<number>;
  output: () => string;
}

export const API_USER = { accessKeyId: 'AKIAHARNESSAPIUSER', secretAccessKey: 'harness-api-user-secret' };

export class AwsHarness {
  readonly functions = {} as Record<FunctionName, LambdaFunction>;
  readonly mappings: SqsEventSourceMapping[] = [];
  readonly tasks: TrainerTask[] = [];
  readonly admin: { s3: S3Client; sqs: SQSClient; vectors: S3VectorsClient };
  readonly imagesBucket: string;
  readonly artifactsBucket: string;
  readonly vectorBucket: string;
  private readonly signer = new ApiSigner(REGION, API_USER);

  private constructor(
    private readonly moto: MotoServer,
    readonly gateway: AwsGateway,
    readonly deployment: Deployment,
    readonly iam: IamPolicies,
    readonly api: RestApiStandIn,
  ) {
    const config = { endpoint: gateway.endpoint, region: REGION, credentials: { accessKeyId: ADMIN_ACCESS_KEY, secretAccessKey: 'x' } };
    this.admin = { s3: new S3Client({ ...config, forcePathStyle: true }), sqs: new SQSClient(config), vectors: new S3VectorsClient(config) };
    const out = (name: string) => deployment.resolveString(deployment.templates.stateful.Outputs![name]!.Value);
    this.imagesBucket = out('ImagesBucket');
    this.artifactsBucket = out('ArtifactsBucket');
    this.vectorBucket = out('VectorBucket');
  }

  static async start(options: HarnessOptions = {}): Promise<AwsHarness> {
    const timeScale = options.timeScale ?? 120;
    const moto = await startMoto();
    const gateway = new AwsGateway(moto.endpoint);
    try {
      await gateway.start();
      const deployment = new Deployment(synthesize(options.pipeline), gateway.endpoint);
      const iam = new IamPolicies(deployment);
      gateway.configure(deployment, iam);

      const fnIds = Object.fromEntries(
        FUNCTIONS.map((name) => {
          const hit = deployment.resources('AWS::Lambda::Function').find(([id]) => id.startsWith(`${name[0]!.toUpperCase()}${name.slice(1)}Function`));
          if (!hit) throw new Error(`no ${name} function in the template`);
          return [name, hit[0]];
        }),
      ) as Record<FunctionName, string>;
      const apiFn = fnIds.api;
      const roleOf = (fnId: string) => (deployment.resource(fnId).Properties!.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];

      const bundles = await Promise.all(FUNCTIONS.map((n) => bundleFunction(n)));
      const placeholder = new LambdaFunction('api', apiFn, roleOf(apiFn), bundles[2]!, {}, {});
      const api = new RestApiStandIn(deployment, placeholder, [API_USER]);
      const harness = new AwsHarness(moto, gateway, deployment, iam, api);
      await harness.provision(timeScale);

      for (const [i, name] of FUNCTIONS.entries()) {
        const id = fnIds[name];
        const role = roleOf(id);
        const env = lambdaEnvironment(deployment, id, gateway.endpoint, gateway.credentialsFor(role));
        harness.functions[name] = new LambdaFunction(
          name,
          id,
          role,
          bundles[i]!,
          env,
          deployment.resource(id).Properties as { Timeout?: number; MemorySize?: number },
        );
      }
      api.fn = harness.functions.api;
      await api.start();

      for (const [, mapping] of deployment.resources('AWS::Lambda::EventSourceMapping')) {
        const props = deployment.resolve(mapping.Properties) as Record<string, unknown>;
        const fnName = FUNCTIONS.find((n) => deployment.ref(fnIds[n]) === props.FunctionName);
        if (!fnName) throw new Error(`event source mapping for an unknown function ${String(props.FunctionName)}`);
        const fn = harness.functions[fnName];
        const sqs = new SQSClient({ endpoint: gateway.endpoint, region: REGION, credentials: gateway.credentialsFor(fn.roleLogicalId), maxAttempts: 1 });
        const esm = new SqsEventSourceMapping(fn, sqs, props, queueUrlOf(gateway.endpoint, String(props.EventSourceArn)));
        esm.start();
        harness.mappings.push(esm);
      }
      const execute = new Set(options.executeTrainerCommands ?? ['init']);
      gateway.onRunTask = async (request) => {
        if (execute.has(request.command[0] ?? '')) harness.runTrainer(request.command, options.trainerEnv ?? {});
        else harness.tasks.push({ command: request.command, done: Promise.resolve(0), output: () => '(recorded, not run)' });
      };
      return harness;
    } catch (err) {
      await gateway.stop();
      await moto.stop();
      throw err;
    }
  }

  /** Creates the stateful resources in moto as CloudFormation would, with the template's settings. */
  private async provision(timeScale: number) {
    const d = this.deployment;
    for (const [id, bucket] of d.resources('AWS::S3::Bucket')) {
      const name = d.ref(id);
      await this.admin.s3.send(new CreateBucketCommand({ Bucket: name }));
      const versioning = bucket.Properties?.VersioningConfiguration as { Status?: string } | undefined;
      if (versioning?.Status === 'Enabled')
        await this.admin.s3.send(new PutBucketVersioningCommand({ Bucket: name, VersioningConfiguration: { Status: 'Enabled' } }));
    }
    const queues = d.resources('AWS::SQS::Queue').sort(([, a], [, b]) => Number(!!a.Properties?.RedrivePolicy) - Number(!!b.Properties?.RedrivePolicy));
    for (const [id, q] of queues) {
      const props = d.resolve(q.Properties ?? {}) as Record<string, unknown>;
      const attributes: Record<string, string> = {
        VisibilityTimeout: String(Math.max(2, Math.round(Number(props.VisibilityTimeout ?? 30) / timeScale))),
        MessageRetentionPeriod: String(props.MessageRetentionPeriod ?? 345600),
      };
      if (props.RedrivePolicy) attributes.RedrivePolicy = JSON.stringify(props.RedrivePolicy);
      await this.admin.sqs.send(new CreateQueueCommand({ QueueName: d.attr(id, 'QueueName'), Attributes: attributes }));
    }
    for (const [id] of d.resources('AWS::S3Vectors::VectorBucket')) {
      await this.admin.vectors.send(new CreateVectorBucketCommand({ vectorBucketName: d.attr(id, 'VectorBucketName') }));
    }
  }

  /** The ECS task, run here: the trainer container's command under the task role, with the task definition's environment. */
  private runTrainer(command: string[], extraEnv: Record<string, string>) {
    const d = this.deployment;
    const [[, td]] = d.resources('AWS::ECS::TaskDefinition') as unknown as [[string, { Properties: Record<string, unknown> }]];
    const container = (td.Properties.ContainerDefinitions as Array<Record<string, unknown>>)[0]!;
    const env = Object.fromEntries(((container.Environment ?? []) as Array<{ Name: string; Value: unknown }>).map((e) => [e.Name, d.resolveString(e.Value)]));
    const taskRoleArn = d.resolveString(td.Properties.TaskRoleArn);
    const [roleId] = d.resources('AWS::IAM::Role').find(([id]) => d.attr(id, 'Arn') === taskRoleArn)!;
    const creds = this.gateway.credentialsFor(roleId);
    const args = command.length > 0 ? command : (container.Command as string[]);
    const child = spawn(resolve(REPO, '.venv/bin/python'), ['-m', 'pipeline_trainer', ...args], {
      cwd: REPO,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: process.env.HOME ?? '/tmp',
        PYTHONPATH: resolve(REPO, 'gpu-trainer'),
        ...env,
        AWS_ACCESS_KEY_ID: creds.accessKeyId,
        AWS_SECRET_ACCESS_KEY: creds.secretAccessKey,
        AWS_SESSION_TOKEN: 'harness-session',
        S3_ENDPOINT_URL: this.gateway.endpoint,
        AWS_ENDPOINT_URL: this.gateway.endpoint,
        TRAINER_CACHE_DIR: resolve(REPO, 'node_modules/.cache/aws-harness/trainer-cache'),
        ...extraEnv,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (b: Buffer) => (output += b.toString()));
    child.stderr.on('data', (b: Buffer) => (output += b.toString()));
    const done = new Promise<number>((r) => child.once('exit', (code) => r(code ?? -1)));
    this.tasks.push({ command: args, done, output: () => output });
  }

  async waitForTasks(): Promise<number[]> {
    return Promise.all(this.tasks.map((t) => t.done));
  }

  /** One EventBridge scheduled invocation of the lifecycle function. */
  async lifecycleTick(): Promise<unknown> {
    const out = await this.functions.lifecycle.invoke({
      version: '0',
      id: `tick-${Date.now()}`,
      'detail-type': 'Scheduled Event',
      source: 'aws.events',
      account: '123456789012',
      time: new Date().toISOString(),
      region: REGION,
      resources: [],
      detail: {},
    });
    if (out.error) throw new Error(`lifecycle failed: ${out.error.errorMessage}\n${out.error.stack ?? ''}`);
    return out.result;
  }

  /** A signed request to the REST API, as a user with execute-api:Invoke. */
  async request(
    method: string,
    path: string,
    init: { body?: Buffer | string; contentType?: string } = {},
  ): Promise<{ status: number; body: unknown; text: string }> {
    const url = new URL(`${this.api.url}${path}`);
    const body = init.body === undefined ? undefined : Buffer.from(init.body);
    const headers = await this.signer.sign({ method, url, headers: init.contentType ? { 'content-type': init.contentType } : {}, body });
    const res = await fetch(url, { method, headers, body });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON
    }
    return { status: res.status, body: parsed, text };
  }

  /** Every IAM violation so far, one line each (role, action, resource). */
  violationReport(): string {
    return this.gateway.violations.map((v) => `${v.role} ${v.operation}: ${v.action} on ${v.resource} (${v.result})`).join('\n');
  }

  logs(): string {
    return FUNCTIONS.map((n) => `---- ${n}\n${this.functions[n]?.logs.slice(-4000) ?? ''}`).join('\n');
  }

  async stop() {
    await Promise.all(this.mappings.map((m) => m.stop()));
    await Promise.all(Object.values(this.functions).map((f) => f.stop()));
    await this.api.stop();
    this.admin.s3.destroy();
    this.admin.sqs.destroy();
    this.admin.vectors.destroy();
    await this.gateway.stop();
    await this.moto.stop();
  }
}

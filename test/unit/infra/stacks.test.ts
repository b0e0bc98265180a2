import { App } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { ALARMS } from '../../../infra/lib/operations';
import { parseLambdaConfig } from '../../../shared/config';
import { SCHEDULED_TRAINING_EVENT } from '../../../shared/schedule-events';
import { buildApp } from '../../../infra/lib/app';
import { parsePipelineConfig } from '../../../infra/lib/config';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { Logger } from '@aws-lambda-powertools/logger';
import { createApiHandler } from '../../../functions/api/handler';
import { API_ROUTES } from '../../../shared/api-routes';
import { fakePipeline } from '../../support/pipeline';

// Bundling is skipped here (the bundling test in test/integration measures the real assets).
const built = buildApp(new App({ context: { 'aws:cdk:bundling-stacks': [] } }));
const stateful = Template.fromStack(built.stateful);
const stateless = Template.fromStack(built.stateless);

type Statement = { Action: string | string[]; Resource: unknown; Effect: string };

/** Every policy statement attached to the role of the function with this construct id. */
function statementsOf(id: 'Augment' | 'Embed' | 'Api' | 'Lifecycle'): Statement[] {
  const fns = stateless.findResources('AWS::Lambda::Function');
  const logicalId = Object.keys(fns).find((k) => k.startsWith(`${id}Function`))!;
  const roleRef = (fns[logicalId]!.Properties.Role as { 'Fn::GetAtt': string[] })['Fn::GetAtt'][0];
  const policies = stateless.findResources('AWS::IAM::Policy');
  return Object.values(policies)
    .filter((p) => (p.Properties.Roles as Array<{ Ref: string }>).some((r) => r.Ref === roleRef))
    .flatMap((p) => p.Properties.PolicyDocument.Statement as Statement[]);
}
const actionsOf = (id: Parameters<typeof statementsOf>[0]) => new Set(statementsOf(id).flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action])));
const envOf = (id: string) => {
  const fns = stateless.findResources('AWS::Lambda::Function');
  return Object.entries(fns).find(([k]) => k.startsWith(`${id}Function`))![1].Properties.Environment.Variables as Record<string, unknown>;
};

/** "METHOD /path" of every API Gateway method in the synthesized template, paths rebuilt from the resource tree. */
function deployedRoutes(): string[] {
  const resources = stateless.findResources('AWS::ApiGateway::Resource');
  const pathOf = (ref: unknown): string => {
    const id = (ref as { Ref?: string }).Ref;
    if (!id || !resources[id]) return '';
    return `${pathOf(resources[id].Properties.ParentId)}/${resources[id].Properties.PathPart}`;
  };
  return Object.values(stateless.findResources('AWS::ApiGateway::Method'))
    .map((m) => `${m.Properties.HttpMethod} ${pathOf(m.Properties.ResourceId)}`)
    .sort();
}

describe('StatefulStack', () => {
  it('encrypts, blocks public access, enforces TLS and logs access on both data buckets', () => {
    const buckets = Object.values(stateful.findResources('AWS::S3::Bucket'));
    const data = buckets.filter((b) => b.Properties.LoggingConfiguration);
    expect(data).toHaveLength(2);
    for (const b of buckets) {
      expect(b.Properties.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault.SSEAlgorithm).toBe('AES256');
      expect(b.Properties.PublicAccessBlockConfiguration).toEqual({
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      });
    }
    const policies = Object.values(stateful.findResources('AWS::S3::BucketPolicy'));
    expect(policies.length).toBeGreaterThanOrEqual(3);
    for (const p of policies) {
      expect(p.Properties.PolicyDocument.Statement).toEqual(
        expect.arrayContaining([expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]),
      );
    }
  });

  it('sends object created and removed events of the images bucket to the ingest queue', () => {
    stateful.hasResourceProperties('Custom::S3BucketNotifications', {
      NotificationConfiguration: {
        QueueConfigurations: [Match.objectLike({ Events: ['s3:ObjectCreated:*'] }), Match.objectLike({ Events: ['s3:ObjectRemoved:*'] })],
      },
    });
  });

  it('gives each work queue an encrypted DLQ after at least 5 receives and a visibility timeout of 6x its function timeout', () => {
    const cfg = built.config;
    stateful.hasResourceProperties('AWS::SQS::Queue', {
      QueueName: 'image-pipeline-ingest',
      VisibilityTimeout: 6 * cfg.augmentTimeoutSeconds,
      SqsManagedSseEnabled: true,
      RedrivePolicy: { maxReceiveCount: 5, deadLetterTargetArn: Match.anyValue() },
    });
    stateful.hasResourceProperties('AWS::SQS::Queue', {
      QueueName: 'image-pipeline-embed',
      VisibilityTimeout: 6 * cfg.embedTimeoutSeconds,
      SqsManagedSseEnabled: true,
      RedrivePolicy: { maxReceiveCount: 5, deadLetterTargetArn: Match.anyValue() },
    });
  });

  it('creates one S3 Vectors bucket with a generated name, read back from its ARN', () => {
    stateful.resourceCountIs('AWS::S3Vectors::VectorBucket', 1);
    const bucket = Object.values(stateful.findResources('AWS::S3Vectors::VectorBucket'))[0]!;
    expect(bucket.Properties.VectorBucketName).toBeUndefined();
    expect(envOf('Embed').VECTOR_BUCKET_NAME).toEqual({
      'Fn::Select': [1, { 'Fn::Split': ['/', { 'Fn::ImportValue': expect.stringMatching(/VectorBucketArn/) }] }],
    });
    expect(JSON.stringify(stateful.toJSON().Outputs)).not.toMatch(/image-pipeline-vectors/);
  });

  it('versions the artifacts bucket and expires noncurrent versions', () => {
    stateful.hasResourceProperties('AWS::S3::Bucket', {
      VersioningConfiguration: { Status: 'Enabled' },
      LifecycleConfiguration: {
        Rules: Match.arrayWith([
          Match.objectLike({ NoncurrentVersionExpiration: { NoncurrentDays: built.config.artifactsNoncurrentDays }, Status: 'Enabled' }),
        ]),
      },
    });
  });
});

describe('StatelessStack', () => {
  it('runs every function on nodejs24.x, arm64, with JSON logs and tracing', () => {
    const ours = Object.entries(stateless.findResources('AWS::Lambda::Function')).filter(([id]) => /^(Augment|Embed|Api|Lifecycle)Function/.test(id));
    expect(ours).toHaveLength(4);
    for (const [, fn] of ours) {
      expect(fn.Properties).toMatchObject({
        Runtime: 'nodejs24.x',
        Architectures: ['arm64'],
        LoggingConfig: { LogFormat: 'JSON' },
        TracingConfig: { Mode: 'Active' },
      });
    }
  });

  it('gives the api function no more time than API Gateway waits (29 s)', () => {
    const [, api] = Object.entries(stateless.findResources('AWS::Lambda::Function')).find(([k]) => k.startsWith('ApiFunction'))!;
    expect(api.Properties.Timeout).toBe(29);
  });

  it('never runs two lifecycle ticks at once, and keeps failed scheduled invocations in an on-failure queue', () => {
    const [id, lifecycle] = Object.entries(stateless.findResources('AWS::Lambda::Function')).find(([k]) => k.startsWith('LifecycleFunction'))!;
    expect(lifecycle.Properties.ReservedConcurrentExecutions).toBe(1);
    stateless.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: id },
      MaximumRetryAttempts: 0,
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [Match.stringLikeRegexp('^LifecycleFailures'), 'Arn'] } } },
    });
  });

  it("gives the lifecycle function the rollout's embed-queue backlog, and the Lambda config reads it", () => {
    const env = envOf('Lifecycle');
    expect(env.ROLLOUT_BACKLOG).toBe('10000');
    const strings = Object.fromEntries(Object.entries(env).map(([k, v]) => [k, typeof v === 'string' ? v : 'x']));
    expect(parseLambdaConfig(strings, { embedQueue: true }).rolloutBacklog).toBe(10_000);
  });

  it('reports partial batch failures from both SQS event sources, with batching and a concurrency cap', () => {
    stateless.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      BatchSize: 10,
      MaximumBatchingWindowInSeconds: 1,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 20 },
    });
    stateless.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      BatchSize: 32,
      MaximumBatchingWindowInSeconds: 2,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 10 },
    });
  });

  it('gives each function the environment it needs', () => {
    for (const id of ['Augment', 'Embed', 'Api', 'Lifecycle'])
      expect(Object.keys(envOf(id))).toEqual(expect.arrayContaining(['IMAGES_BUCKET', 'ARTIFACTS_BUCKET', 'VECTOR_BUCKET_NAME']));
    expect(Object.keys(envOf('Augment'))).toContain('EMBED_QUEUE_URL');
    for (const id of ['Api', 'Lifecycle']) {
      expect(Object.keys(envOf(id))).toEqual(
        expect.arrayContaining(['TRAIN_CLUSTER_ARN', 'TRAIN_TASK_DEFINITION_ARN', 'TRAIN_CAPACITY_PROVIDER', 'TRAIN_CONTAINER_NAME']),
      );
    }
  });

  it('grants each function only the actions it uses, and no wildcard actions anywhere', () => {
    // s3:ListBucket wherever a function reads keys that may not exist: without it S3 answers 403, not 404
    // (the AWS-mode test in test/aws fails on any such read).
    expect(actionsOf('Augment')).toEqual(
      new Set([
        's3:GetObject',
        's3:ListBucket',
        's3:PutObject',
        's3:DeleteObject',
        's3vectors:GetIndex',
        's3vectors:DeleteVectors',
        'sqs:SendMessage',
        'sqs:GetQueueAttributes',
        'sqs:GetQueueUrl',
        'sqs:ReceiveMessage',
        'sqs:ChangeMessageVisibility',
        'sqs:DeleteMessage',
        'xray:PutTraceSegments',
        'xray:PutTelemetryRecords',
      ]),
    );
    expect(actionsOf('Embed')).toEqual(
      new Set([
        's3:GetObject',
        's3:ListBucket',
        's3:PutObject',
        's3:DeleteObject',
        's3vectors:GetIndex',
        's3vectors:PutVectors',
        's3vectors:DeleteVectors',
        'sqs:ReceiveMessage',
        'sqs:ChangeMessageVisibility',
        'sqs:GetQueueUrl',
        'sqs:DeleteMessage',
        'sqs:GetQueueAttributes',
        'xray:PutTraceSegments',
        'xray:PutTelemetryRecords',
      ]),
    );
    expect(actionsOf('Embed').has('s3vectors:CreateIndex')).toBe(false);
    for (const a of ['s3vectors:QueryVectors', 'ecs:RunTask', 'iam:PassRole']) expect(actionsOf('Api').has(a)).toBe(true);
    for (const a of ['s3vectors:CreateIndex', 's3vectors:DeleteIndex', 'ecs:RunTask']) expect(actionsOf('Lifecycle').has(a)).toBe(true);
    for (const id of ['Augment', 'Embed', 'Api'] as const) {
      expect(actionsOf(id).has('s3vectors:CreateIndex') || actionsOf(id).has('s3vectors:DeleteIndex')).toBe(false);
    }
    // The roles this app writes: the functions', the trainer task's and the scheduler's. (CDK's own
    // ECS container-instance policy keeps its ecs:Submit* statement.)
    const ours = (['Augment', 'Embed', 'Api', 'Lifecycle'] as const).flatMap(statementsOf);
    const taskAndScheduler = Object.entries(stateless.findResources('AWS::IAM::Policy'))
      .filter(([id]) => /TaskTaskRole|SchedulerRole/.test(id))
      .flatMap(([, p]) => p.Properties.PolicyDocument.Statement as Statement[]);
    expect(taskAndScheduler.length).toBeGreaterThanOrEqual(3);
    for (const s of [...ours, ...taskAndScheduler]) for (const a of [s.Action].flat()) expect(a).not.toMatch(/\*/);
  });

  it('lets only the API read and redrive the dead-letter queues, and tells the queue functions their maxReceiveCount', () => {
    const moves = statementsOf('Api').filter((s) => ([] as string[]).concat(s.Action).includes('sqs:StartMessageMoveTask'));
    expect(moves.length).toBeGreaterThan(0);
    for (const s of moves) expect(JSON.stringify(s.Resource)).toMatch(/Dlq/);
    for (const id of ['Augment', 'Embed', 'Lifecycle'] as const) expect(actionsOf(id).has('sqs:StartMessageMoveTask')).toBe(false);
    expect(envOf('Augment').MAX_RECEIVE_COUNT).toBe('5');
    expect(envOf('Embed').MAX_RECEIVE_COUNT).toBe('5');
    expect(Object.keys(envOf('Api'))).toEqual(expect.arrayContaining(['INGEST_DLQ_URL', 'INGEST_DLQ_ARN', 'EMBED_DLQ_URL', 'EMBED_DLQ_ARN']));
  });

  it('has no CORS: no OPTIONS methods and no CORS headers configured', () => {
    const methods = Object.values(stateless.findResources('AWS::ApiGateway::Method'));
    expect(methods.some((m) => m.Properties.HttpMethod === 'OPTIONS')).toBe(false);
    expect(JSON.stringify(methods)).not.toMatch(/Access-Control-Allow/);
  });

  it('scopes index creation and deletion to the vector bucket\u2019s indexes', () => {
    const create = statementsOf('Lifecycle').find((s) => [s.Action].flat().includes('s3vectors:CreateIndex'))!;
    expect(JSON.stringify(create.Resource)).toContain('/index/*');
  });

  it('requires IAM authorisation on every API method and serves every contract route', () => {
    const methods = Object.values(stateless.findResources('AWS::ApiGateway::Method')).filter((m) => m.Properties.HttpMethod !== 'OPTIONS');
    expect(methods).toHaveLength(API_ROUTES.length);
    for (const m of methods) expect(m.Properties.AuthorizationType).toBe('AWS_IAM');
    stateless.hasResourceProperties('AWS::ApiGateway::RestApi', { BinaryMediaTypes: ['image/*', 'application/octet-stream'] });
    stateless.hasResourceProperties('AWS::ApiGateway::Stage', {
      MethodSettings: [Match.objectLike({ ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 })],
      AccessLogSetting: Match.objectLike({ DestinationArn: Match.anyValue() }),
    });
    stateless.hasResourceProperties('AWS::ApiGateway::Method', {
      HttpMethod: 'GET',
      RequestParameters: { 'method.request.querystring.key': true },
      RequestValidatorId: Match.anyValue(),
    });
  });

  it('trains on one GPU from a group that scales from and to zero through a capacity provider, also on a schedule', () => {
    stateless.hasResourceProperties('AWS::ECS::TaskDefinition', {
      ContainerDefinitions: [Match.objectLike({ Name: 'trainer', ResourceRequirements: [{ Type: 'GPU', Value: '1' }] })],
    });
    stateless.hasResourceProperties('AWS::AutoScaling::AutoScalingGroup', { MinSize: '0', MaxSize: '1' });
    stateless.hasResourceProperties('AWS::ECS::CapacityProvider', {
      AutoScalingGroupProvider: Match.objectLike({ ManagedScaling: Match.objectLike({ Status: 'ENABLED' }) }),
    });
    // Scheduled runs go through the lifecycle function, which takes the training lease (never RunTask directly).
    const schedule = Object.values(stateless.findResources('AWS::Scheduler::Schedule'))[0]!;
    expect(schedule.Properties.ScheduleExpression).toBe('rate(1 day)');
    expect(schedule.Properties.Target.EcsParameters).toBeUndefined();
    expect(schedule.Properties.Target.Arn).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^LifecycleFunction/), 'Arn'] });
    expect(JSON.parse(schedule.Properties.Target.Input)).toEqual(SCHEDULED_TRAINING_EVENT);
    const schedulerPolicies = Object.entries(stateless.findResources('AWS::IAM::Policy')).filter(([k]) => k.startsWith('TrainingSchedulerRole'));
    expect(schedulerPolicies.flatMap(([, p]) => p.Properties.PolicyDocument.Statement.map((st: Statement) => st.Action))).toEqual(['lambda:InvokeFunction']);
  });

  it('runs the trainer task with a GPU preset by default, and the configured one', () => {
    const env = (t: Template) =>
      (
        Object.values(t.findResources('AWS::ECS::TaskDefinition'))[0]!.Properties.ContainerDefinitions[0].Environment as Array<{ Name: string; Value: unknown }>
      ).find((e) => e.Name === 'TRAINER_PRESET')?.Value;
    expect(env(stateless)).toBe('gpu-resnet18-128');
    const vit = buildApp(new App({ context: { 'aws:cdk:bundling-stacks': [], pipeline: { trainingPreset: 'gpu-vits16-224' } } }));
    expect(env(Template.fromStack(vit.stateless))).toBe('gpu-vits16-224');
    expect(() => parsePipelineConfig({ trainingPreset: 'gpu-huge' })).toThrow(/trainingPreset/);
  });

  it('launches GPU instances from the Amazon Linux 2023 ECS GPU AMI, falling back through a list of instance types, optionally on Spot', () => {
    const lt = Object.values(stateless.findResources('AWS::EC2::LaunchTemplate'))[0]!;
    expect(JSON.stringify(lt.Properties.LaunchTemplateData.ImageId)).toMatch(/amazonlinux2023gpu/);
    const asg = Object.values(stateless.findResources('AWS::AutoScaling::AutoScalingGroup'))[0]!;
    const mixed = asg.Properties.MixedInstancesPolicy;
    expect(mixed.LaunchTemplate.Overrides.map((o: { InstanceType: string }) => o.InstanceType)).toEqual(built.config.trainingInstanceTypes);
    expect(mixed.InstancesDistribution).toMatchObject({ OnDemandPercentageAboveBaseCapacity: 100, OnDemandAllocationStrategy: 'prioritized' });
    const spot = buildApp(new App({ context: { 'aws:cdk:bundling-stacks': [], pipeline: { trainingUseSpot: true } } }));
    const spotAsg = Object.values(Template.fromStack(spot.stateless).findResources('AWS::AutoScaling::AutoScalingGroup'))[0]!;
    expect(spotAsg.Properties.MixedInstancesPolicy.InstancesDistribution).toMatchObject({
      OnDemandPercentageAboveBaseCapacity: 0,
      SpotAllocationStrategy: 'price-capacity-optimized',
    });
  });

  it('notifies one SNS topic from every alarm: function errors and throttles, queue age, dead letters, API 5xx and p99, trainer and scheduler failures', () => {
    const alarms = Object.values(stateless.findResources('AWS::CloudWatch::Alarm'));
    const topic = Object.keys(stateless.findResources('AWS::SNS::Topic'));
    expect(topic).toHaveLength(1);
    for (const a of alarms) expect(a.Properties.AlarmActions).toEqual([{ Ref: topic[0] }]);
    const names = alarms.map((a) => a.Properties.AlarmName).sort();
    const expected = [
      ...['augment', 'embed', 'api', 'lifecycle'].flatMap((f) => [ALARMS.functionErrors(f), ALARMS.functionThrottles(f)]),
      ...['ingest', 'embed'].flatMap((q) => [ALARMS.queueAge(q), ALARMS.deadLetters(q)]),
      ALARMS.api5xx,
      ALARMS.apiLatency,
      ALARMS.trainerFailed,
      ALARMS.schedulerFailed,
      ALARMS.lifecycleFailed,
    ].map((n) => `image-pipeline-${n}`);
    expect(names).toEqual(expected.sort());
    stateless.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
    stateless.resourceCountIs('AWS::SNS::Subscription', 0);
    const withEmail = buildApp(new App({ context: { 'aws:cdk:bundling-stacks': [], pipeline: { alarmEmail: 'ops@example.com' } } }));
    Template.fromStack(withEmail.stateless).hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.com' });
  });

  it('documents every alarm in the README runbook', () => {
    const readme = readFileSync(join(__dirname, '../../../README.md'), 'utf8');
    const runbook = readme.slice(readme.indexOf('## Runbook'));
    for (const a of Object.values(stateless.findResources('AWS::CloudWatch::Alarm'))) {
      const generic = String(a.Properties.AlarmName)
        .replace('image-pipeline-', '')
        .replace(/^(augment|embed|api|lifecycle)-(errors|throttles)$/, '<function>-$2')
        .replace(/^(ingest|embed)-/, '<queue>-');
      expect(runbook).toContain(`\`${generic}\``);
    }
  });
});

describe('cdk-nag AwsSolutions', () => {
  it('has no unacknowledged findings', () => {
    for (const stack of [built.stateful, built.stateless]) {
      expect(Annotations.fromStack(stack).findError('*', Match.stringLikeRegexp('AwsSolutions-.*'))).toEqual([]);
      expect(Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('AwsSolutions-.*'))).toEqual([]);
    }
  });
});

describe('parsePipelineConfig', () => {
  it('applies defaults and rejects unknown or malformed keys', () => {
    expect(parsePipelineConfig({ trainingInstanceType: 'g6.xlarge' })).toMatchObject({ trainingInstanceTypes: ['g6.xlarge'], lambdaArchitecture: 'arm64' });
    expect(parsePipelineConfig({ trainingInstanceTypes: ['g6e.xlarge', 'g5.xlarge'] }).trainingInstanceTypes).toEqual(['g6e.xlarge', 'g5.xlarge']);
    expect(() => parsePipelineConfig({ trainingInstanceTypes: [] })).toThrow(/trainingInstanceTypes/);
    // CloudFormation accepts only these retention periods; anything else fails at deploy time, so here.
    expect(parsePipelineConfig({ logRetentionDays: 14 }).logRetentionDays).toBe(14);
    expect(() => parsePipelineConfig({ logRetentionDays: 10 })).toThrow(/logRetentionDays must be one of 1, 3, 5, 7, 14, 30/);
    expect(() => parsePipelineConfig({ alarmEmail: 'not-an-address' })).toThrow(/alarmEmail/);
    expect(() => parsePipelineConfig({ trainingInstances: 2 })).toThrow(/Unrecognized key/);
    expect(() => parsePipelineConfig({ maxReceiveCount: 2 })).toThrow(/maxReceiveCount/);
  });
});

describe('the API contract, one definition', () => {
  const contract = API_ROUTES.map((r) => `${r.method} ${r.path}`).sort();

  it('API Gateway serves exactly the contract routes', () => {
    expect(deployedRoutes()).toEqual(contract);
  });

  it('the API handler answers every deployed route (no 404 or 405) and refuses other methods on them', async () => {
    const p = await fakePipeline();
    const handler = createApiHandler({ ...p, launcher: { launch: async () => undefined }, deadLetters: [] }, new Logger({ logLevel: 'SILENT' }));
    const call = (method: string, path: string) =>
      handler({
        httpMethod: method,
        path,
        resource: path,
        headers: {},
        queryStringParameters: null,
        body: null,
        isBase64Encoded: false,
      } as unknown as APIGatewayProxyEvent);
    for (const route of deployedRoutes()) {
      const [method, path] = route.split(' ') as [string, string];
      expect([404, 405]).not.toContain((await call(method, path)).statusCode);
      expect((await call('DELETE', path)).statusCode).toBe(405);
    }
    expect((await call('GET', '/not-a-route')).statusCode).toBe(404);
  });

  it("the README's route table lists exactly the contract routes", () => {
    const readme = readFileSync(join(__dirname, '../../../README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## HTTP API'), readme.indexOf('\n## ', readme.indexOf('## HTTP API') + 1));
    const rows = [...section.matchAll(/^\| `(GET|POST|PUT|DELETE) (\/[^`?[ ]*)/gm)].map((m) => `${m[1]} ${m[2]}`);
    expect([...new Set(rows)].sort()).toEqual(contract);
  });
});

/**
 * Stateless resources: the functions (augment, embed, api, lifecycle), their event sources, the
 * REST API, the lifecycle schedule and GPU training. Every grant names its actions and the
 * narrowest resources (key prefixes, the vector bucket's indexes).
 */
import { Duration, Stack, type StackProps } from 'aws-cdk-lib';
import { API_ROUTES, type ApiRouteSpec } from '../../shared/api-routes';
import { ARTIFACT_PREFIXES, artifactKeys } from '../../shared/artifact-keys';
import {
  AccessLogFormat,
  AuthorizationType,
  EndpointType,
  LambdaIntegration,
  LogGroupLogDestination,
  MethodLoggingLevel,
  RestApi,
} from 'aws-cdk-lib/aws-apigateway';
import { Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { PolicyStatement, Role, ServicePrincipal, type IGrantable } from 'aws-cdk-lib/aws-iam';
import { SqsDestination } from 'aws-cdk-lib/aws-lambda-destinations';
import { CfnSchedule } from 'aws-cdk-lib/aws-scheduler';
import { type IQueue, Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { SCHEDULED_TRAINING_EVENT } from '../../shared/schedule-events';
import { AWS_LIMITS } from '../../shared/aws-limits';
import { Architecture } from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import { NagSuppressions } from 'cdk-nag';
import type { Construct } from 'constructs';
import type { PipelineConfig } from './config';
import { Operations } from './operations';
import { PipelineFunction } from './pipeline-function';
import { TRAINER_CONTAINER, Training } from './training';

export interface StatelessStackProps extends StackProps {
  readonly config: PipelineConfig;
  readonly imagesBucket: IBucket;
  readonly artifactsBucket: IBucket;
  readonly ingestQueue: IQueue;
  readonly embedQueue: IQueue;
  readonly ingestDlq: IQueue;
  readonly embedDlq: IQueue;
  readonly vectorBucketName: string;
  readonly vectorBucketArn: string;
}

export class StatelessStack extends Stack {
  readonly api: RestApi;
  readonly functions: Record<'augment' | 'embed' | 'api' | 'lifecycle', PipelineFunction>;
  readonly operations: Operations;

  constructor(scope: Construct, id: string, props: StatelessStackProps) {
    super(scope, id, props);
    const { config } = props;
    if (config.viewSize > config.workingSize)
      throw new Error(`pipeline config: viewSize (${config.viewSize}) must not exceed workingSize (${config.workingSize})`);
    const logRetention = config.logRetentionDays as RetentionDays;
    const architecture = config.lambdaArchitecture === 'arm64' ? Architecture.ARM_64 : Architecture.X86_64;
    const training = new Training(this, 'Training', { config, imagesBucket: props.imagesBucket, artifactsBucket: props.artifactsBucket, logRetention });

    const common = {
      IMAGES_BUCKET: props.imagesBucket.bucketName,
      ARTIFACTS_BUCKET: props.artifactsBucket.bucketName,
      VECTOR_BUCKET_NAME: props.vectorBucketName,
      MAX_IMAGE_BYTES: String(config.maxImageBytes),
      MAX_IMAGE_PIXELS: String(config.maxImagePixels),
      AUGMENT_VIEWS: String(config.augmentViews),
      WORKING_SIZE: String(config.workingSize),
      VIEW_SIZE: String(config.viewSize),
      RETRAIN_MIN_NEW_LABELS: String(config.retrainMinNewLabels),
      // Scheduled runs are EventBridge Scheduler's job in AWS, not the lifecycle function's.
      RETRAIN_INTERVAL_MINUTES: '0',
      TRAIN_MAX_MINUTES: String(config.trainMaxMinutes),
      INDEX_RETENTION_HOURS: String(config.indexRetentionHours),
    };
    // The queue functions record a message's error on its last attempt (SQS keeps none in the DLQ).
    const lastAttemptEnv = { MAX_RECEIVE_COUNT: String(config.maxReceiveCount) };
    const deadLetterEnv = {
      INGEST_DLQ_URL: props.ingestDlq.queueUrl,
      INGEST_DLQ_ARN: props.ingestDlq.queueArn,
      EMBED_DLQ_URL: props.embedDlq.queueUrl,
      EMBED_DLQ_ARN: props.embedDlq.queueArn,
    };
    const trainingEnv = {
      TRAIN_CLUSTER_ARN: training.cluster.clusterArn,
      TRAIN_TASK_DEFINITION_ARN: training.taskDefinition.taskDefinitionArn,
      TRAIN_CAPACITY_PROVIDER: training.capacityProvider.capacityProviderName,
      TRAIN_CONTAINER_NAME: TRAINER_CONTAINER,
    };
    const fn = (
      name: 'augment' | 'embed' | 'api' | 'lifecycle',
      memorySize: number,
      timeout: Duration,
      environment: Record<string, string>,
      nativeModules: boolean,
      description: string,
    ) =>
      new PipelineFunction(this, `${name[0]!.toUpperCase()}${name.slice(1)}`, {
        name,
        memorySize,
        timeout,
        architecture,
        environment,
        nativeModules,
        logRetention,
        description,
      });

    const augment = fn(
      'augment',
      config.augmentMemoryMb,
      Duration.seconds(config.augmentTimeoutSeconds),
      { ...common, ...lastAttemptEnv, EMBED_QUEUE_URL: props.embedQueue.queueUrl },
      true,
      'S3 event -> canonical image + augmented views',
    );
    const embed = fn(
      'embed',
      config.embedMemoryMb,
      Duration.seconds(config.embedTimeoutSeconds),
      { ...common, ...lastAttemptEnv },
      true,
      'derived image -> vector in the serving (and candidate) index',
    );
    const api = fn(
      'api',
      config.apiMemoryMb,
      // API Gateway stops waiting after 29 s: a longer function timeout would only run on unheard.
      Duration.millis(AWS_LIMITS.apiGateway.integrationTimeoutMs),
      { ...common, ...trainingEnv, ...deadLetterEnv, INGEST_QUEUE_URL: props.ingestQueue.queueUrl, EMBED_QUEUE_URL: props.embedQueue.queueUrl },
      true,
      'HTTP API',
    );
    // Scheduled ticks never overlap (reserved concurrency 1: an overlapping tick is throttled and
    // dropped, the next one comes a minute later); a failed asynchronous invocation is not retried
    // (the next tick is the retry) and lands in an on-failure queue that an alarm watches.
    const lifecycleFailures = new Queue(this, 'LifecycleFailures', {
      queueName: `${config.namePrefix}-lifecycle-failures`,
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    NagSuppressions.addResourceSuppressions(lifecycleFailures, [
      { id: 'AwsSolutions-SQS3', reason: 'This is the on-failure destination of the lifecycle function.' },
    ]);
    const lifecycle = new PipelineFunction(this, 'Lifecycle', {
      name: 'lifecycle',
      memorySize: config.lifecycleMemoryMb,
      timeout: Duration.minutes(5),
      architecture,
      environment: {
        ...common,
        ...trainingEnv,
        EMBED_QUEUE_URL: props.embedQueue.queueUrl,
        INGEST_QUEUE_URL: props.ingestQueue.queueUrl,
        ROLLOUT_BACKLOG: String(config.rolloutBacklog),
      },
      nativeModules: false,
      logRetention,
      description: 'retrain trigger, scheduled training, rollout, index retention',
      reservedConcurrentExecutions: 1,
      onFailure: new SqsDestination(lifecycleFailures),
      retryAttempts: 0,
    });
    this.functions = { augment, embed, api, lifecycle };

    augment.fn.addEventSource(
      new SqsEventSource(props.ingestQueue, {
        batchSize: 10,
        maxBatchingWindow: Duration.seconds(1),
        reportBatchItemFailures: true,
        maxConcurrency: config.augmentMaxConcurrency,
      }),
    );
    embed.fn.addEventSource(
      new SqsEventSource(props.embedQueue, {
        batchSize: 32,
        maxBatchingWindow: Duration.seconds(2),
        reportBatchItemFailures: true,
        maxConcurrency: config.embedMaxConcurrency,
      }),
    );
    new Rule(this, 'LifecycleSchedule', {
      schedule: Schedule.rate(Duration.minutes(config.lifecycleRateMinutes)),
      targets: [new LambdaFunction(lifecycle.fn, { retryAttempts: 0 })],
    });
    // Scheduled training: EventBridge Scheduler invokes the lifecycle function, which takes the
    // training lease before it starts the task (a run in progress makes it skip, never overlap).
    if (config.trainingSchedule) {
      const schedulerRole = new Role(this, 'TrainingSchedulerRole', { assumedBy: new ServicePrincipal('scheduler.amazonaws.com') });
      schedulerRole.addToPolicy(new PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [lifecycle.fn.functionArn] }));
      new CfnSchedule(this, 'TrainingSchedule', {
        description: 'Scheduled training run, started by the lifecycle function through the training lease',
        scheduleExpression: config.trainingSchedule,
        flexibleTimeWindow: { mode: 'OFF' },
        target: {
          arn: lifecycle.fn.functionArn,
          roleArn: schedulerRole.roleArn,
          input: JSON.stringify(SCHEDULED_TRAINING_EVENT),
          retryPolicy: { maximumRetryAttempts: 2, maximumEventAgeInSeconds: 3600 },
        },
      });
    }

    // ---- least-privilege grants -------------------------------------------------------------------
    // Key-prefix wildcards granted per role, for the cdk-nag IAM5 suppression of exactly those (below).
    const wildcards = new Map<IGrantable, Set<string>>();
    const s3 = (grantee: IGrantable, bucket: IBucket, actions: string[], prefixes: string[]) => {
      const set = wildcards.get(grantee) ?? new Set<string>();
      for (const p of prefixes) if (p.includes('*')) set.add(`${bucket === props.imagesBucket ? 'Images' : 'Artifacts'} ${p}`);
      wildcards.set(grantee, set);
      grantee.grantPrincipal.addToPrincipalPolicy(new PolicyStatement({ actions, resources: prefixes.map((p) => bucket.arnForObjects(p)) }));
    };
    const list = (grantee: IGrantable, bucket: IBucket) =>
      grantee.grantPrincipal.addToPrincipalPolicy(new PolicyStatement({ actions: ['s3:ListBucket'], resources: [bucket.bucketArn] }));
    const vectors = (grantee: IGrantable, actions: string[], onBucket = false) =>
      grantee.grantPrincipal.addToPrincipalPolicy(
        new PolicyStatement({ actions, resources: [onBucket ? props.vectorBucketArn : `${props.vectorBucketArn}/index/*`] }),
      );
    const runTrainer = (grantee: IGrantable) => {
      grantee.grantPrincipal.addToPrincipalPolicy(
        new PolicyStatement({
          actions: ['ecs:RunTask'],
          resources: [training.taskDefinition.taskDefinitionArn],
          conditions: { ArnEquals: { 'ecs:cluster': training.cluster.clusterArn } },
        }),
      );
      grantee.grantPrincipal.addToPrincipalPolicy(
        new PolicyStatement({
          actions: ['iam:PassRole'],
          resources: [training.taskDefinition.taskRole.roleArn, training.taskDefinition.obtainExecutionRole().roleArn],
          conditions: { StringLike: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } },
        }),
      );
    };

    // Object grants by the artifact layout's prefixes (shared/artifact-keys.ts), never by hand.
    const under = Object.fromEntries(Object.entries(ARTIFACT_PREFIXES).map(([name, prefix]) => [name, `${prefix}*`])) as Record<
      keyof typeof ARTIFACT_PREFIXES,
      string
    >;
    // S3 answers a read of a missing key with 403, not 404, unless the caller may list the bucket:
    // every function that reads keys which may not exist yet (ledger, labels, quarantine records,
    // pointers, an image deleted since its event) needs s3:ListBucket on that bucket.
    s3(augment.fn, props.imagesBucket, ['s3:GetObject'], ['*']);
    list(augment.fn, props.imagesBucket);
    list(augment.fn, props.artifactsBucket);
    s3(augment.fn, props.artifactsBucket, ['s3:GetObject'], [under.models, under.events, under.labels, under.pseudoLabels, under.quarantine]);
    s3(augment.fn, props.artifactsBucket, ['s3:PutObject'], [under.events]);
    s3(augment.fn, props.artifactsBucket, ['s3:PutObject', 's3:DeleteObject'], [under.derived, under.quarantine]);
    s3(augment.fn, props.artifactsBucket, ['s3:DeleteObject'], [under.labels]);
    // GET /images lists uploads from the entries augment writes when it first sees each one.
    s3(augment.fn, props.artifactsBucket, ['s3:PutObject'], [under.catalog]);
    vectors(augment.fn, ['s3vectors:GetIndex', 's3vectors:DeleteVectors']);
    props.embedQueue.grantSendMessages(augment.fn);
    s3(augment.fn, props.artifactsBucket, ['s3:PutObject'], [under.deadLetters]);

    s3(embed.fn, props.artifactsBucket, ['s3:GetObject'], [under.models, under.derived, under.labels, under.pseudoLabels]);
    list(embed.fn, props.artifactsBucket);
    // Stored counters (index sizes, quarantined images): shards and membership markers under counts/.
    s3(augment.fn, props.artifactsBucket, ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'], [under.counts]);
    s3(embed.fn, props.artifactsBucket, ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'], [under.counts]);
    vectors(embed.fn, ['s3vectors:GetIndex', 's3vectors:PutVectors', 's3vectors:DeleteVectors']);
    s3(embed.fn, props.artifactsBucket, ['s3:PutObject'], [under.deadLetters]);

    s3(api.fn, props.imagesBucket, ['s3:GetObject'], ['*']);
    list(api.fn, props.imagesBucket);
    s3(
      api.fn,
      props.artifactsBucket,
      ['s3:GetObject'],
      [under.models, under.labels, under.quarantine, under.rollouts, under.runs, under.locks, under.pseudoLabels],
    );
    s3(api.fn, props.artifactsBucket, ['s3:PutObject'], [under.labels, under.runs, under.locks, under.rollouts, artifactKeys.servingPointer]);
    // POST /models/import: reads the uploaded ONNX (and checks the weights exist), writes the request for the job.
    s3(api.fn, props.artifactsBucket, ['s3:GetObject', 's3:PutObject'], [under.imports]);
    s3(api.fn, props.artifactsBucket, ['s3:DeleteObject'], [artifactKeys.candidatePointer]);
    // GET /images reads the catalog and removes entries a re-upload or a delete left stale;
    // GET /thumbnails reads the thumbnails augment made (and nothing else under derived/).
    s3(api.fn, props.artifactsBucket, ['s3:GetObject', 's3:DeleteObject'], [under.catalog]);
    s3(api.fn, props.artifactsBucket, ['s3:GetObject'], [artifactKeys.derivedThumbnail('*')]);
    list(api.fn, props.artifactsBucket);
    s3(api.fn, props.artifactsBucket, ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'], [under.counts]);
    vectors(api.fn, ['s3vectors:GetIndex', 's3vectors:QueryVectors', 's3vectors:GetVectors', 's3vectors:PutVectors', 's3vectors:ListVectors']);
    props.ingestQueue.grant(api.fn, 'sqs:GetQueueAttributes');
    props.embedQueue.grant(api.fn, 'sqs:GetQueueAttributes');
    // GET /dead-letters peeks (receive with visibility 0); POST /dead-letters/redrive starts an SQS
    // message move task, which acts with the caller's permissions on both queues.
    s3(api.fn, props.artifactsBucket, ['s3:GetObject'], [under.deadLetters]);
    for (const dlq of [props.ingestDlq, props.embedDlq]) {
      dlq.grant(api.fn, 'sqs:GetQueueAttributes', 'sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:StartMessageMoveTask');
    }
    props.ingestQueue.grantSendMessages(api.fn);
    props.embedQueue.grantSendMessages(api.fn);
    runTrainer(api.fn);

    list(lifecycle.fn, props.imagesBucket);
    list(lifecycle.fn, props.artifactsBucket);
    s3(lifecycle.fn, props.artifactsBucket, ['s3:GetObject'], [under.models, under.rollouts, under.runs, under.locks, under.labels]);
    s3(lifecycle.fn, props.artifactsBucket, ['s3:PutObject'], [artifactKeys.servingPointer, under.rollouts, under.runs, under.locks]);
    s3(lifecycle.fn, props.artifactsBucket, ['s3:DeleteObject'], [artifactKeys.candidatePointer]);
    s3(lifecycle.fn, props.artifactsBucket, ['s3:GetObject', 's3:PutObject'], [under.counts]);
    vectors(lifecycle.fn, ['s3vectors:GetIndex', 's3vectors:CreateIndex', 's3vectors:DeleteIndex', 's3vectors:ListVectors', 's3vectors:GetVectors']);
    vectors(lifecycle.fn, ['s3vectors:ListIndexes'], true);
    props.embedQueue.grantSendMessages(lifecycle.fn);
    runTrainer(lifecycle.fn);
    // Migrating derived images below the working resolution: reads their metas, records progress
    // under layout/, and hands each image to augment through the ingest queue.
    s3(lifecycle.fn, props.artifactsBucket, ['s3:GetObject'], [under.derived]);
    s3(lifecycle.fn, props.artifactsBucket, ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'], [under.layout]);
    props.ingestQueue.grantSendMessages(lifecycle.fn);

    // ---- REST API: IAM authorisation on every method ---------------------------------------------
    this.api = new RestApi(this, 'RestApi', {
      restApiName: `${config.namePrefix}-api`,
      description: 'Image similarity search: neighbours, search by image, labels, models, training',
      endpointTypes: [EndpointType.REGIONAL],
      binaryMediaTypes: ['image/*', 'application/octet-stream'],
      defaultMethodOptions: { authorizationType: AuthorizationType.IAM },
      cloudWatchRole: true,
      deployOptions: {
        stageName: 'v1',
        throttlingRateLimit: config.apiThrottleRateLimit,
        throttlingBurstLimit: config.apiThrottleBurstLimit,
        accessLogDestination: new LogGroupLogDestination(new LogGroup(this, 'ApiAccessLogs', { retention: logRetention })),
        accessLogFormat: AccessLogFormat.jsonWithStandardFields(),
        loggingLevel: MethodLoggingLevel.ERROR,
        tracingEnabled: true,
        metricsEnabled: true,
      },
    });
    const validator = this.api.addRequestValidator('Validator', { validateRequestParameters: true, validateRequestBody: true });
    const integration = new LambdaIntegration(api.fn);
    for (const route of API_ROUTES as readonly ApiRouteSpec[]) {
      const resource = this.api.root.resourceForPath(route.path.slice(1));
      resource.addMethod(route.method, integration, {
        authorizationType: AuthorizationType.IAM,
        requestValidator: validator,
        requestParameters: Object.fromEntries((route.requiredQuery ?? []).map((q) => [`method.request.querystring.${q}`, true])),
      });
    }

    this.operations = new Operations(this, 'Operations', {
      config,
      functions: this.functions,
      queues: { ingest: props.ingestQueue, embed: props.embedQueue },
      deadLetterQueues: { ingest: props.ingestDlq, embed: props.embedDlq },
      lifecycleFailures,
      api: this.api,
      trainingCluster: training.cluster,
      logRetention,
    });

    // IAM5, per role and per wildcard: object grants under the key prefixes of the artifact layout
    // (bucket/prefix/*), vector grants on the vector bucket's indexes (one per model version, created
    // at rollout), and "*" for X-Ray's PutTraceSegments/PutTelemetryRecords, which take no resource.
    const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    const bucketArn = (logical: string) => `(<${logical}[0-9A-F]+\\.Arn>|[A-Za-z0-9]+:ExportsOutputFnGetAtt${logical}[0-9A-F]+Arn[0-9A-F]+)`;
    for (const [name, f] of Object.entries(this.functions)) {
      const grants = [...(wildcards.get(f.fn) ?? [])].map((g) => g.split(' ') as [string, string]);
      NagSuppressions.addResourceSuppressions(
        f.fn.role!,
        [
          {
            id: 'AwsSolutions-IAM5',
            reason: `${name}: object access under these key prefixes only, vector access to the vector bucket's indexes, X-Ray writes (no resource-level permissions).`,
            appliesTo: [
              'Resource::*',
              { regex: `/^Resource::(<Vectors\\.VectorBucketArn>|[A-Za-z0-9]+:ExportsOutputFnGetAttVectorsVectorBucketArn[0-9A-F]+)\\/index\\/\\*$/g` },
              ...grants.map(([bucket, prefix]) => ({ regex: `/^Resource::${bucketArn(bucket)}\\/${escapeRegex(prefix)}$/g` })),
            ],
          },
        ],
        true,
      );
    }

    NagSuppressions.addStackSuppressions(this, [
      {
        id: 'AwsSolutions-IAM4',
        reason:
          'AWSLambdaBasicExecutionRole/AWSLambdaSQSQueueExecutionRole-style managed policies written by CDK for logs, X-Ray and the API Gateway CloudWatch role are the AWS-maintained minimum.',
        appliesTo: [
          'Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole',
          'Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs',
        ],
      },
      {
        id: 'AwsSolutions-APIG3',
        reason: 'Every method requires SigV4 (IAM) authorisation and the stage is throttled; a WAF web ACL is optional and left to the deployer (cost).',
      },
      { id: 'AwsSolutions-COG4', reason: 'The API uses IAM authorisation, not Cognito user pools.' },
      {
        id: 'AwsSolutions-L1',
        reason: 'nodejs24.x is the newest Node.js runtime this CDK version knows; the BucketNotificationsHandler custom resource runtime is chosen by CDK.',
      },
    ]);
  }
}

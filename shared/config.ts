/**
 * Configuration: parsed once from the environment, typed, and failing fast with a message that
 * names the missing or malformed key.
 */
import { z } from 'zod';
import { DEFAULT_DERIVED, type DerivedSizes } from './derived-sizes';
import { ConfigError } from './errors';

type Env = Record<string, string | undefined>;

const intFrom = (def: number, min: number, max: number) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '') return def;
      const n = Number(v);
      if (!Number.isInteger(n) || n < min || n > max) {
        ctx.addIssue({ code: 'custom', message: `must be an integer between ${min} and ${max}, got "${v}"` });
        return z.NEVER;
      }
      return n;
    });

const required = z.string({ error: 'is required' }).min(1, 'is required');

/** Settings every deployment shares: limits on input, the augmentation, training, retention and rollout. */
const pipelineShape = {
  MAX_IMAGE_BYTES: intFrom(50 * 1024 * 1024, 1024, 5 * 1024 * 1024 * 1024),
  MAX_IMAGE_PIXELS: intFrom(100_000_000, 64, 1_000_000_000),
  AUGMENT_VIEWS: intFrom(2, 0, 16),
  WORKING_SIZE: intFrom(DEFAULT_DERIVED.workingSize, 32, 1024),
  VIEW_SIZE: intFrom(DEFAULT_DERIVED.viewSize, 16, 1024),
  RETRAIN_MIN_NEW_LABELS: intFrom(100, 0, 10_000_000),
  RETRAIN_INTERVAL_MINUTES: intFrom(0, 0, 525_600),
  TRAIN_MAX_MINUTES: intFrom(10, 1, 24 * 60),
  INDEX_RETENTION_HOURS: intFrom(24, 0, 24 * 365),
  ROLLOUT_BACKLOG: intFrom(1000, 1, 1_000_000),
};

export interface PipelineSettings {
  maxImageBytes: number;
  maxImagePixels: number;
  augmentViews: number;
  /** Derived images, independent of any model: the canonical image's shorter side and the views' side. */
  derived: DerivedSizes;
  retrain: { minNewLabels: number; intervalMinutes: number; maxMinutes: number };
  indexRetentionMs: number;
}

function checkDerived(raw: { WORKING_SIZE: number; VIEW_SIZE: number }): void {
  if (raw.VIEW_SIZE > raw.WORKING_SIZE) {
    throw new ConfigError(`invalid configuration: VIEW_SIZE (${raw.VIEW_SIZE}) must not exceed WORKING_SIZE (${raw.WORKING_SIZE})`);
  }
}

function parseEnv<T extends z.ZodRawShape>(shape: T, env: Env): z.infer<z.ZodObject<T>> {
  const result = z.object(shape).safeParse(env);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join('.')} ${i.message}`).join('; ');
    throw new ConfigError(`invalid configuration: ${problems}`);
  }
  return result.data;
}

type PipelineRaw = { [K in keyof typeof pipelineShape]: number };

function pipelineSettings(raw: PipelineRaw): PipelineSettings {
  checkDerived(raw);
  return {
    maxImageBytes: raw.MAX_IMAGE_BYTES,
    maxImagePixels: raw.MAX_IMAGE_PIXELS,
    augmentViews: raw.AUGMENT_VIEWS,
    derived: { workingSize: raw.WORKING_SIZE, viewSize: raw.VIEW_SIZE },
    retrain: { minNewLabels: raw.RETRAIN_MIN_NEW_LABELS, intervalMinutes: raw.RETRAIN_INTERVAL_MINUTES, maxMinutes: raw.TRAIN_MAX_MINUTES },
    indexRetentionMs: raw.INDEX_RETENTION_HOURS * 3_600_000,
  };
}

export interface LocalStackConfig extends PipelineSettings {
  dataDir: string;
  host: string;
  s3Port: number;
  apiPort: number;
  pythonBin: string;
  maxReceives: number;
  visibilityTimeoutMs: number;
  workerConcurrency: number;
  logLevel: string;
  lifecycleIntervalMs: number;
  /** Embed-queue messages a rollout's backfill keeps waiting (RolloutDeps.backlog). */
  rolloutBacklog: number;
}

export function parseLocalStackConfig(env: Env): LocalStackConfig {
  const raw = parseEnv(
    {
      ...pipelineShape,
      PIPELINE_DATA_DIR: z.string().optional(),
      S3_PORT: intFrom(4566, 0, 65535),
      API_PORT: intFrom(3000, 0, 65535),
      PIPELINE_PYTHON: z.string().optional(),
      QUEUE_MAX_RECEIVES: intFrom(5, 1, 100),
      QUEUE_VISIBILITY_TIMEOUT_SECONDS: intFrom(120, 1, 43_200),
      WORKER_CONCURRENCY: intFrom(2, 1, 64),
      LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error']).optional(),
      LIFECYCLE_INTERVAL_SECONDS: intFrom(2, 1, 3600),
    },
    env,
  );
  return {
    ...pipelineSettings(raw),
    dataDir: raw.PIPELINE_DATA_DIR && raw.PIPELINE_DATA_DIR.trim() !== '' ? raw.PIPELINE_DATA_DIR : '.data',
    host: '127.0.0.1',
    s3Port: raw.S3_PORT,
    apiPort: raw.API_PORT,
    pythonBin: raw.PIPELINE_PYTHON ?? '.venv/bin/python',
    maxReceives: raw.QUEUE_MAX_RECEIVES,
    visibilityTimeoutMs: raw.QUEUE_VISIBILITY_TIMEOUT_SECONDS * 1000,
    workerConcurrency: raw.WORKER_CONCURRENCY,
    logLevel: raw.LOG_LEVEL ?? 'warn',
    lifecycleIntervalMs: raw.LIFECYCLE_INTERVAL_SECONDS * 1000,
    rolloutBacklog: raw.ROLLOUT_BACKLOG,
  };
}

export interface LambdaConfig extends PipelineSettings {
  imagesBucket: string;
  artifactsBucket: string;
  vectorBucketName: string;
  embedQueueUrl?: string;
  ingestQueueUrl?: string;
  /** The source queues' maxReceiveCount: a record's last attempt writes its error for GET /dead-letters. */
  maxReceiveCount?: number;
  deadLetterQueues: Array<{ name: 'ingest' | 'embed'; url: string; arn: string }>;
  /** Embed-queue messages a rollout's backfill keeps waiting (RolloutDeps.backlog). */
  rolloutBacklog: number;
  training?: { clusterArn: string; taskDefinitionArn: string; capacityProvider: string; containerName: string };
}

/** Lambda functions: bucket and queue names come from the CDK app's environment variables. */
export function parseLambdaConfig(env: Env, needs: { embedQueue?: boolean; ingestQueue?: boolean; training?: boolean } = {}): LambdaConfig {
  const trainingKey = needs.training ? required : z.string().optional();
  const raw = parseEnv(
    {
      ...pipelineShape,
      IMAGES_BUCKET: required,
      ARTIFACTS_BUCKET: required,
      VECTOR_BUCKET_NAME: required,
      EMBED_QUEUE_URL: needs.embedQueue ? required : z.string().optional(),
      INGEST_QUEUE_URL: needs.ingestQueue ? required : z.string().optional(),
      MAX_RECEIVE_COUNT: intFrom(0, 0, 1000), // 0: not a queue function
      INGEST_DLQ_URL: z.string().optional(),
      INGEST_DLQ_ARN: z.string().optional(),
      EMBED_DLQ_URL: z.string().optional(),
      EMBED_DLQ_ARN: z.string().optional(),
      TRAIN_CLUSTER_ARN: trainingKey,
      TRAIN_TASK_DEFINITION_ARN: trainingKey,
      TRAIN_CAPACITY_PROVIDER: trainingKey,
      TRAIN_CONTAINER_NAME: trainingKey,
    },
    env,
  );
  return {
    ...pipelineSettings(raw),
    imagesBucket: raw.IMAGES_BUCKET,
    artifactsBucket: raw.ARTIFACTS_BUCKET,
    vectorBucketName: raw.VECTOR_BUCKET_NAME,
    embedQueueUrl: raw.EMBED_QUEUE_URL,
    ingestQueueUrl: raw.INGEST_QUEUE_URL,
    maxReceiveCount: raw.MAX_RECEIVE_COUNT || undefined,
    rolloutBacklog: raw.ROLLOUT_BACKLOG,
    deadLetterQueues: [
      ...(raw.INGEST_DLQ_URL && raw.INGEST_DLQ_ARN ? [{ name: 'ingest' as const, url: raw.INGEST_DLQ_URL, arn: raw.INGEST_DLQ_ARN }] : []),
      ...(raw.EMBED_DLQ_URL && raw.EMBED_DLQ_ARN ? [{ name: 'embed' as const, url: raw.EMBED_DLQ_URL, arn: raw.EMBED_DLQ_ARN }] : []),
    ],
    training:
      raw.TRAIN_CLUSTER_ARN && raw.TRAIN_TASK_DEFINITION_ARN && raw.TRAIN_CAPACITY_PROVIDER && raw.TRAIN_CONTAINER_NAME
        ? {
            clusterArn: raw.TRAIN_CLUSTER_ARN,
            taskDefinitionArn: raw.TRAIN_TASK_DEFINITION_ARN,
            capacityProvider: raw.TRAIN_CAPACITY_PROVIDER,
            containerName: raw.TRAIN_CONTAINER_NAME,
          }
        : undefined,
  };
}

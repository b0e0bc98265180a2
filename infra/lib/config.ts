import { DEFAULT_DERIVED } from '../../shared/derived-sizes';
/**
 * The deployment's configuration: one typed object, read from the CDK context key `pipeline`
 * (cdk.json, or `-c pipeline='{"trainingInstanceTypes":["g6.xlarge"]}'`), every key optional with the
 * default below, unknown keys rejected. No account or region is hard-coded: the stacks deploy to
 * the CLI's current account and region (CDK_DEFAULT_ACCOUNT / CDK_DEFAULT_REGION).
 */
import { z } from 'zod';
import { DEFAULT_GPU_PRESET, TRAINER_PRESETS } from '../../shared/trainer-presets';

/** The retention periods CloudFormation accepts for AWS::Logs::LogGroup RetentionInDays. */
export const LOG_RETENTION_DAYS: readonly number[] = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

export const PipelineConfigSchema = z
  .object({
    /** Prefix of resource names (queues, cluster, capacity provider, log groups). */
    namePrefix: z
      .string()
      .regex(/^[a-z][a-z0-9-]{1,24}$/)
      .default('image-pipeline'),
    /** Lambda architecture: Graviton (arm64) is about 20% cheaper per GB-s, and sharp and onnxruntime-node ship arm64 builds. */
    lambdaArchitecture: z.enum(['arm64', 'x86_64']).default('arm64'),
    augmentMemoryMb: z.number().int().min(512).max(10240).default(2048),
    embedMemoryMb: z.number().int().min(512).max(10240).default(3008),
    apiMemoryMb: z.number().int().min(512).max(10240).default(2048),
    lifecycleMemoryMb: z.number().int().min(256).max(10240).default(1024),
    augmentTimeoutSeconds: z.number().int().min(10).max(900).default(60),
    embedTimeoutSeconds: z.number().int().min(10).max(900).default(120),
    /** Concurrent batches per function: S3 Vectors takes about 2,500 vectors/s per index. */
    augmentMaxConcurrency: z.number().int().min(2).max(1000).default(20),
    embedMaxConcurrency: z.number().int().min(2).max(1000).default(10),
    /** DLQ after this many receives. */
    maxReceiveCount: z.number().int().min(5).max(100).default(5),
    maxImageBytes: z
      .number()
      .int()
      .positive()
      .default(50 * 1024 * 1024),
    maxImagePixels: z.number().int().positive().default(100_000_000),
    augmentViews: z.number().int().min(0).max(16).default(2),
    /** Shorter side of the stored canonical image (derived data independent of any model); no model may take a larger input. */
    workingSize: z.number().int().min(32).max(1024).default(DEFAULT_DERIVED.workingSize),
    /** Side of the stored augmented views (at most workingSize). */
    viewSize: z.number().int().min(16).max(1024).default(DEFAULT_DERIVED.viewSize),
    /**
     * GPU instance types of the training capacity provider, in order of preference: the Auto Scaling
     * group launches the first one with capacity (one GPU each; the task asks for one GPU).
     */
    trainingInstanceTypes: z
      .array(z.string().regex(/^[a-z][a-z0-9-]*\.[a-z0-9]+$/, 'an EC2 instance type such as g6.xlarge'))
      .min(1)
      .max(20)
      .default(['g6.xlarge', 'g5.xlarge', 'g6e.xlarge', 'g4dn.xlarge']),
    /** Spot instances (price-capacity-optimized across the types above): a run interrupted by Spot fails and its lease expires; the next trigger retries. */
    trainingUseSpot: z.boolean().default(false),
    /** The trainer preset the ECS task runs (TRAINER_PRESET): a GPU preset by default. */
    trainingPreset: z.enum(TRAINER_PRESETS).default(DEFAULT_GPU_PRESET),
    trainingMaxInstances: z.number().int().min(1).max(16).default(1),
    /** EventBridge Scheduler expression of scheduled runs; empty: none. */
    trainingSchedule: z.string().default('rate(1 day)'),
    trainMaxMinutes: z
      .number()
      .int()
      .min(1)
      .max(24 * 60)
      .default(60),
    retrainMinNewLabels: z.number().int().min(0).default(100),
    indexRetentionHours: z.number().int().min(0).default(24),
    lifecycleRateMinutes: z.number().int().min(1).max(60).default(1),
    /**
     * Embed-queue messages a rollout's backfill keeps waiting, topped up each lifecycle tick: the
     * rollout then runs as fast as the embed function drains its queue (embedMaxConcurrency), and an
     * upload's message waits behind at most this many. 500 a tick made a rollout of 1M images take
     * 33 hours at one tick a minute.
     */
    rolloutBacklog: z.number().int().min(1).max(1_000_000).default(10_000),
    apiThrottleRateLimit: z.number().min(1).default(50),
    apiThrottleBurstLimit: z.number().int().min(1).default(100),
    /** CloudWatch Logs retention: one of the values CloudFormation accepts. */
    logRetentionDays: z
      .number()
      .int()
      .refine((d) => LOG_RETENTION_DAYS.includes(d), { message: `must be one of ${LOG_RETENTION_DAYS.join(', ')}` })
      .default(30),
    /** Email address that alarm notifications go to (an SNS subscription to confirm); empty: the topic only. */
    alarmEmail: z.union([z.literal(''), z.email()]).default(''),
    /** Days an overwritten or deleted artifact (model pointers, manifests, records) stays recoverable. */
    artifactsNoncurrentDays: z.number().int().min(1).max(3650).default(30),
  })
  .strict();

export type PipelineConfig = z.infer<typeof PipelineConfigSchema>;

export function parsePipelineConfig(raw: unknown): PipelineConfig {
  const input = { ...((raw ?? {}) as Record<string, unknown>) };
  // Earlier releases took one type: it still works, as a list of one.
  if ('trainingInstanceType' in input) {
    if ('trainingInstanceTypes' in input) throw new Error('invalid "pipeline" context: give trainingInstanceTypes (a list) or trainingInstanceType, not both');
    input.trainingInstanceTypes = [input.trainingInstanceType];
    delete input.trainingInstanceType;
  }
  const result = PipelineConfigSchema.safeParse(input);
  if (!result.success) {
    throw new Error(`invalid "pipeline" context: ${result.error.issues.map((i) => `${i.path.join('.') || '(root)'} ${i.message}`).join('; ')}`);
  }
  return result.data;
}

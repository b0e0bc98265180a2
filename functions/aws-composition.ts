/**
 * The AWS composition root: wires the shared use cases to AWS adapters. SDK clients are built
 * once per container (at cold start) and reused across invocations.
 */
import { ECSClient } from '@aws-sdk/client-ecs';
import { S3Client } from '@aws-sdk/client-s3';
import { S3VectorsClient } from '@aws-sdk/client-s3vectors';
import { SQSClient } from '@aws-sdk/client-sqs';
import { clientPolicy } from '../shared/aws-client-config';
import { EcsTrainingLauncher } from '../shared/adapters/ecs-training-launcher';
import { CountedVectorStore } from '../shared/adapters/counted-vector-index';
import { S3ObjectStore } from '../shared/adapters/s3-object-store';
import { PendingCounts, StoredCounters } from '../shared/counters';
import { S3VectorsStore } from '../shared/adapters/s3vectors-vector-index';
import { SqsDeadLetterQueue } from '../shared/adapters/sqs-dead-letters';
import { SqsQueue } from '../shared/adapters/sqs-queue';
import { artifactKeys } from '../shared/artifact-keys';
import type { DeadLetterRecord } from '../shared/schemas';
import type { LastAttemptRecorder } from './sqs-edge';
import type { LambdaConfig } from '../shared/config';
import { IndexResolver } from '../shared/index-resolver';
import { ModelRegistry } from '../shared/model-registry';
import type { EncoderFactory } from '../shared/ports/encoder';
import type { Queue } from '../shared/ports/queue';
import type { TrainingLauncher } from '../shared/ports/training-launcher';

export interface AwsClients {
  s3?: S3Client;
  sqs?: SQSClient;
  s3vectors?: S3VectorsClient;
  ecs?: ECSClient;
}

export interface ComposeOptions {
  /** Queue functions: index size changes are gathered per batch and written by `flushCounts` (after each batch). */
  batchedCounts?: boolean;
}

export function composeAws(config: LambdaConfig, clients: AwsClients = {}, options: ComposeOptions = {}) {
  const policy = clientPolicy();
  const s3 = clients.s3 ?? new S3Client(policy);
  const sqs = clients.sqs ?? new SQSClient(policy);
  const store = new S3ObjectStore(s3);
  // Loaded on first use: the lifecycle function never embeds and ships without onnxruntime-node.
  const encoders: EncoderFactory = {
    create: async (manifest, onnx) => new (await import('../shared/adapters/onnx-encoder')).OnnxEncoderFactory().create(manifest, onnx),
  };
  const models = new ModelRegistry(store, config.artifactsBucket, encoders);
  // S3 Vectors can count an index only by listing it: sizes come from stored counters instead.
  const vectors = new S3VectorsStore(clients.s3vectors ?? new S3VectorsClient(policy), config.vectorBucketName);
  const counters = new StoredCounters(store, config.artifactsBucket);
  const pending = options.batchedCounts ? new PendingCounts(counters) : undefined;
  const indexes = new IndexResolver(new CountedVectorStore(vectors, counters, pending));
  const queue = (url: string | undefined, name: string): Queue => {
    if (!url) throw new Error(`${name} is not configured for this function`);
    return new SqsQueue(sqs, url);
  };
  const pendingQueues = [config.ingestQueueUrl, config.embedQueueUrl].filter((u): u is string => !!u).map((u) => new SqsQueue(sqs, u));
  const launcher: TrainingLauncher = config.training
    ? new EcsTrainingLauncher(clients.ecs ?? new ECSClient(policy), config.training)
    : { launch: async () => Promise.reject(new Error('training is not configured for this deployment')) };
  const deadLetters = config.deadLetterQueues.map((q) => new SqsDeadLetterQueue(q.name, sqs, q, { store, bucket: config.artifactsBucket }));
  /** Stores a record's error on its last attempt, for GET /dead-letters (SQS keeps none). */
  const lastAttempt = (queue: string): LastAttemptRecorder | undefined =>
    config.maxReceiveCount === undefined
      ? undefined
      : {
          maxReceiveCount: config.maxReceiveCount,
          record: async (record, error, receiveCount) => {
            const entry: DeadLetterRecord = {
              queue,
              messageId: record.messageId,
              error: error.message.slice(0, 2000),
              receiveCount,
              at: new Date().toISOString(),
            };
            await store.put(config.artifactsBucket, artifactKeys.deadLetter(record.messageId), JSON.stringify(entry), 'application/json');
          },
        };
  return {
    store,
    deadLetters,
    lastAttempt,
    models,
    indexes,
    imagesBucket: config.imagesBucket,
    artifactsBucket: config.artifactsBucket,
    settings: config,
    embedQueue: () => queue(config.embedQueueUrl, 'EMBED_QUEUE_URL'),
    ingestQueue: () => queue(config.ingestQueueUrl, 'INGEST_QUEUE_URL'),
    pendingQueues,
    launcher,
    flushCounts: async () => pending?.flush(),
  };
}

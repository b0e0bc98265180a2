/** Lambda entry point of `augment` (composition root: environment -> adapters -> handler). */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { parseLambdaConfig } from '../../shared/config';
import { composeAws } from '../aws-composition';
import { createAugmentHandler } from './handler';

const aws = composeAws(parseLambdaConfig(process.env, { embedQueue: true }), {}, { batchedCounts: true });
export const handler = createAugmentHandler({ ...aws, embedQueue: aws.embedQueue() }, new Logger({ serviceName: 'augment' }), {
  metrics: new Metrics({ namespace: 'ImagePipeline', serviceName: 'augment' }),
  lastAttempt: aws.lastAttempt('ingest'),
  afterBatch: aws.flushCounts,
});

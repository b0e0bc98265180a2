/** Lambda entry point of `embed`. */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { parseLambdaConfig } from '../../shared/config';
import { composeAws } from '../aws-composition';
import { createEmbedHandler } from './handler';

const aws = composeAws(parseLambdaConfig(process.env), {}, { batchedCounts: true });
export const handler = createEmbedHandler(aws, new Logger({ serviceName: 'embed' }), {
  metrics: new Metrics({ namespace: 'ImagePipeline', serviceName: 'embed' }),
  lastAttempt: aws.lastAttempt('embed'),
  afterBatch: aws.flushCounts,
});

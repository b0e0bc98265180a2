/** Lambda entry point of `lifecycle`. */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { parseLambdaConfig } from '../../shared/config';
import { composeAws } from '../aws-composition';
import { createLifecycleHandler } from './handler';

const config = parseLambdaConfig(process.env, { embedQueue: true, ingestQueue: true, training: true });
const aws = composeAws(config);
export const handler = createLifecycleHandler(
  {
    ...aws,
    embedQueue: aws.embedQueue(),
    policy: config.retrain,
    indexRetentionMs: config.indexRetentionMs,
    backlog: config.rolloutBacklog,
    migration: { imagesBucket: config.imagesBucket, ingestQueue: aws.ingestQueue(), sizes: config.derived },
  },
  new Logger({ serviceName: 'lifecycle' }),
  new Metrics({ namespace: 'ImagePipeline', serviceName: 'lifecycle' }),
);

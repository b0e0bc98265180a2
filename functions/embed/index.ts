/** Lambda entry point of `embed`. */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { parseLambdaConfig } from '../../shared/config';
import { composeAws } from '../aws-composition';
import { createEmbedHandler } from './handler';

export const handler = createEmbedHandler(composeAws(parseLambdaConfig(process.env)), new Logger({ serviceName: 'embed' }), new Metrics({ namespace: 'ImagePipeline', serviceName: 'embed' }));

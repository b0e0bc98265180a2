/** Lambda entry point of `api` (API Gateway REST proxy integration). */
import { parseLambdaConfig } from '../../shared/config';
import { composeAws } from '../aws-composition';
import { createApiHandler } from './handler';

export const handler = createApiHandler(composeAws(parseLambdaConfig(process.env, { training: true })));

/** Lambda entry point of `embed`. */
import { parseLambdaConfig } from '../../shared/config';
import { composeAws } from '../aws-composition';
import { createEmbedHandler } from './handler';

export const handler = createEmbedHandler(composeAws(parseLambdaConfig(process.env)));

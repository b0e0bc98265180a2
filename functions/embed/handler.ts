/** embed: embed messages (via SQS) -> vectors in the serving (and candidate) index. */
import { Logger } from '@aws-lambda-powertools/logger';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { EmbedMessageSchema } from '../../shared/schemas';
import { embedImage, type EmbedDeps } from '../../shared/use-cases/embed-image';
import { sqsBatchHandler, type SqsBatchHandler, type SqsEdgeOptions } from '../sqs-edge';
import { parseJsonObject } from '../../shared/json';

export function createEmbedHandler(deps: EmbedDeps, logger = new Logger({ serviceName: 'embed' }), options: SqsEdgeOptions = {}): SqsBatchHandler {
  const { metrics } = options;
  return sqsBatchHandler(
    logger,
    async (record) => {
      const message = parseJsonObject(record.body, EmbedMessageSchema);
      const outcome = await embedImage(deps, message);
      logger.debug('embed', { key: message.key, outcome });
      if (outcome === 'indexed') {
        metrics?.addMetric('ImagesEmbedded', MetricUnit.Count, 1);
        // Upload to searchable: the pipeline's end-to-end lag (not for a rollout's re-embedding).
        const uploaded = message.uploadedAt ? Date.parse(message.uploadedAt) : Number.NaN;
        if (Number.isFinite(uploaded) && !message.versions) metrics?.addMetric('EndToEndLag', MetricUnit.Milliseconds, Math.max(0, Date.now() - uploaded));
      }
    },
    options,
  );
}

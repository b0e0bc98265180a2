/** augment: S3 event notifications (via SQS) -> derived views + embed messages. */
import { Logger } from '@aws-lambda-powertools/logger';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { S3Schema } from '@aws-lambda-powertools/parser/schemas';
import { decodeEventKey } from '../../shared/s3-event';
import { augmentImage, type AugmentDeps } from '../../shared/use-cases/augment-image';
import { sqsBatchHandler, type SqsBatchHandler, type SqsEdgeOptions } from '../sqs-edge';

export function createAugmentHandler(deps: AugmentDeps, logger = new Logger({ serviceName: 'augment' }), options: SqsEdgeOptions = {}): SqsBatchHandler {
  const { metrics } = options;
  return sqsBatchHandler(
    logger,
    async (record) => {
      const body: unknown = JSON.parse(record.body);
      if (isTestEvent(body)) {
        logger.info('ignoring s3:TestEvent');
        return;
      }
      const event = S3Schema.parse(body);
      for (const r of event.Records) {
        const kind = r.eventName.startsWith('ObjectRemoved') ? 'removed' : r.eventName.startsWith('ObjectCreated') ? 'created' : undefined;
        if (!kind) continue;
        const key = r.s3.object.urlDecodedKey ?? decodeEventKey(r.s3.object.key);
        const outcome = await augmentImage(deps, { kind, bucket: r.s3.bucket.name, key, sequencer: r.s3.object.sequencer ?? '', time: r.eventTime });
        logger.info('augment', { key, event: r.eventName, outcome });
        metrics?.addMetric(`Images${outcome[0]!.toUpperCase()}${outcome.slice(1)}`, MetricUnit.Count, 1);
      }
    },
    options,
  );
}

function isTestEvent(body: unknown): boolean {
  return typeof body === 'object' && body !== null && (body as { Event?: unknown }).Event === 's3:TestEvent';
}

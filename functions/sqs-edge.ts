/**
 * The SQS edge shared by the queue-driven functions: every record of a batch goes through one
 * use-case call, in parallel, and failures are reported per record (ReportBatchItemFailures), so
 * only the failed records are retried and, after the queue's maxReceiveCount, dead-lettered.
 */
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Logger } from '@aws-lambda-powertools/logger';
import { MetricUnit, type Metrics } from '@aws-lambda-powertools/metrics';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';

export type SqsBatchHandler = (event: SQSEvent, context?: Context) => Promise<SQSBatchResponse>;

/** `metrics`: Powertools metrics (CloudWatch EMF) in Lambda; none in the embedded stack. */
export function sqsBatchHandler(logger: Logger, handleRecord: (record: SQSRecord) => Promise<void>, metrics?: Metrics): SqsBatchHandler {
  const recordHandler = async (record: SQSRecord) => {
    try {
      await handleRecord(record);
    } catch (err) {
      logger.warn('record failed; it will be retried', { messageId: record.messageId, receiveCount: record.attributes?.ApproximateReceiveCount, error: (err as Error).message });
      throw err;
    }
  };
  return async (event, context) => {
    // One processor per invocation: the local worker invokes handlers concurrently.
    const processor = new BatchProcessor(EventType.SQS);
    const response = await processPartialResponse(event, recordHandler, processor, { context: context as Context, throwOnFullBatchFailure: false });
    if (metrics) {
      const failed = response.batchItemFailures.length;
      metrics.addMetric('RecordsSucceeded', MetricUnit.Count, event.Records.length - failed);
      metrics.addMetric('RecordsFailed', MetricUnit.Count, failed);
      metrics.publishStoredMetrics();
    }
    return response;
  };
}

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

/**
 * SQS keeps no error with a dead-lettered message: on a record's last attempt (its receive count
 * reached the queue's maxReceiveCount) the error is handed to `record`, which stores it where
 * GET /dead-letters finds it. The embedded stack's queue journals errors itself and needs none.
 */
export interface LastAttemptRecorder {
  maxReceiveCount: number;
  record(record: SQSRecord, error: Error, receiveCount: number): Promise<void>;
}

export interface SqsEdgeOptions {
  /** Powertools metrics (CloudWatch EMF) in Lambda; none in the embedded stack. */
  metrics?: Metrics;
  lastAttempt?: LastAttemptRecorder;
  /**
   * Every failed record's error. Only record ids cross the batch response, so the embedded stack's
   * worker learns what went wrong here and journals it with the message (its DLQ keeps it).
   */
  onRecordFailure?: (record: SQSRecord, error: Error) => void;
  /** After each batch (success or not): writes what the batch gathered, e.g. counter changes. */
  afterBatch?: () => Promise<void>;
}

export function sqsBatchHandler(logger: Logger, handleRecord: (record: SQSRecord) => Promise<void>, options: SqsEdgeOptions = {}): SqsBatchHandler {
  const { metrics, lastAttempt, onRecordFailure, afterBatch } = options;
  const recordHandler = async (record: SQSRecord) => {
    try {
      await handleRecord(record);
    } catch (err) {
      const receiveCount = Number(record.attributes?.ApproximateReceiveCount ?? 0);
      const last = lastAttempt !== undefined && receiveCount >= lastAttempt.maxReceiveCount;
      logger.warn(last ? 'record failed on its last attempt; it goes to the dead-letter queue' : 'record failed; it will be retried', {
        messageId: record.messageId,
        receiveCount,
        error: (err as Error).message,
      });
      if (last) await lastAttempt.record(record, err as Error, receiveCount).catch((e) => logger.error('could not record the dead letter', e as Error));
      onRecordFailure?.(record, err as Error);
      throw err;
    }
  };
  return async (event, context) => {
    // One processor per invocation: the local worker invokes handlers concurrently.
    const processor = new BatchProcessor(EventType.SQS);
    const response = await processPartialResponse(event, recordHandler, processor, { context: context as Context, throwOnFullBatchFailure: false });
    // Losing these would only make a displayed count drift (the rollout re-checks ids when counts disagree).
    if (afterBatch) await afterBatch().catch((err) => logger.error('could not write what the batch gathered (counters)', err as Error));
    if (metrics) {
      const failed = response.batchItemFailures.length;
      metrics.addMetric('RecordsSucceeded', MetricUnit.Count, event.Records.length - failed);
      metrics.addMetric('RecordsFailed', MetricUnit.Count, failed);
      metrics.publishStoredMetrics();
    }
    return response;
  };
}

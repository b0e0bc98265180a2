/** lifecycle: scheduled (EventBridge) tick of the retrain trigger, index retention and rollout. */
import { Logger } from '@aws-lambda-powertools/logger';
import { MetricUnit, type Metrics } from '@aws-lambda-powertools/metrics';
import { ConflictError } from '../../shared/errors';
import { isScheduledTraining, SCHEDULED_TRAINING_EVENT } from '../../shared/schedule-events';
import { lifecycleTick, type LifecycleDeps, type LifecycleTick } from '../../shared/use-cases/lifecycle';
import { startTraining } from '../../shared/use-cases/training';

export type LifecycleResult = LifecycleTick | { training: { started?: string; skipped?: string } };

export function createLifecycleHandler(
  deps: LifecycleDeps,
  logger = new Logger({ serviceName: 'lifecycle' }),
  metrics?: Metrics,
): (event?: unknown) => Promise<LifecycleResult> {
  return async (event) => {
    if (isScheduledTraining(event)) {
      // EventBridge Scheduler's run: through the training lease like every other start.
      try {
        const { jobId } = await startTraining({ ...deps, policy: deps.policy }, { reason: SCHEDULED_TRAINING_EVENT.reason });
        logger.info('scheduled training started', { jobId });
        metrics?.addMetric('TrainingRunsStarted', MetricUnit.Count, 1);
        metrics?.publishStoredMetrics();
        return { training: { started: jobId } };
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err;
        logger.info('scheduled training skipped: a run is in progress', { reason: err.message });
        return { training: { skipped: err.message } };
      }
    }
    const tick = await lifecycleTick(deps);
    logger.info('lifecycle tick', { ...tick });
    if (metrics) {
      if (tick.training.started) metrics.addMetric('TrainingRunsStarted', MetricUnit.Count, 1);
      if (tick.indexSize !== undefined) metrics.addMetric('IndexSize', MetricUnit.Count, tick.indexSize);
      if (tick.rollout.state === 'backfilling') metrics.addMetric('RolloutRemaining', MetricUnit.Count, tick.rollout.total - tick.rollout.done);
      if (tick.rollout.state === 'flipped') metrics.addMetric('RolloutsCompleted', MetricUnit.Count, 1);
      metrics.publishStoredMetrics();
    }
    return tick;
  };
}

/** lifecycle: scheduled (EventBridge) tick of the retrain trigger, index retention and rollout. */
import { Logger } from '@aws-lambda-powertools/logger';
import { MetricUnit, type Metrics } from '@aws-lambda-powertools/metrics';
import { lifecycleTick, type LifecycleDeps, type LifecycleTick } from '../../shared/use-cases/lifecycle';

export function createLifecycleHandler(
  deps: LifecycleDeps,
  logger = new Logger({ serviceName: 'lifecycle' }),
  metrics?: Metrics,
): () => Promise<LifecycleTick> {
  return async () => {
    const tick = await lifecycleTick(deps);
    logger.info('lifecycle tick', { ...tick });
    if (metrics) {
      if (tick.training.started) metrics.addMetric('TrainingRunsStarted', MetricUnit.Count, 1);
      if (tick.rollout.state === 'backfilling') metrics.addMetric('RolloutRemaining', MetricUnit.Count, tick.rollout.total - tick.rollout.done);
      if (tick.rollout.state === 'flipped') metrics.addMetric('RolloutsCompleted', MetricUnit.Count, 1);
      metrics.publishStoredMetrics();
    }
    return tick;
  };
}

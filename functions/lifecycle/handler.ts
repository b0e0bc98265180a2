/** lifecycle: scheduled (EventBridge) tick of the retrain trigger, index retention and rollout. */
import { Logger } from '@aws-lambda-powertools/logger';
import { lifecycleTick, type LifecycleDeps, type LifecycleTick } from '../../shared/use-cases/lifecycle';

export function createLifecycleHandler(deps: LifecycleDeps, logger = new Logger({ serviceName: 'lifecycle' })): () => Promise<LifecycleTick> {
  return async () => {
    const tick = await lifecycleTick(deps);
    logger.info('lifecycle tick', { ...tick });
    return tick;
  };
}

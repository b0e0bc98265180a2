/**
 * The events the lifecycle function is invoked with: EventBridge's scheduled tick (every minute:
 * retrain trigger, rollout, retention), and EventBridge Scheduler's scheduled training, whose input
 * is this object (set in the template, parsed here: one definition for both sides).
 */
export const SCHEDULED_TRAINING_EVENT = { action: 'train', reason: 'schedule' } as const;

export function isScheduledTraining(event: unknown): boolean {
  return typeof event === 'object' && event !== null && (event as { action?: unknown }).action === SCHEDULED_TRAINING_EVENT.action;
}

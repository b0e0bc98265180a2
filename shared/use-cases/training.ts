/** Starting a training run on demand. */
import { randomUUID } from 'node:crypto';
import type { TrainingLauncher } from '../ports/training-launcher';

export interface TrainingDeps {
  launcher: TrainingLauncher;
  newJobId?: () => string;
}

export async function startTraining(deps: TrainingDeps, input: { maxMinutes?: number }): Promise<{ jobId: string }> {
  const jobId = (deps.newJobId ?? (() => `train-${new Date().toISOString().replace(/[-:.TZ]/g, '').slice(0, 14)}-${randomUUID().slice(0, 8)}`))();
  await deps.launcher.launch({ jobId, maxMinutes: input.maxMinutes });
  return { jobId };
}

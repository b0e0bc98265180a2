/** Starts a training run (ECS RunTask in AWS, a subprocess locally). */
export interface TrainingRequest {
  jobId: string;
  maxMinutes?: number;
  /** The trainer command: a training run (default), or `init` to publish a first model. */
  command?: 'run' | 'init';
}

export interface TrainingLauncher {
  launch(request: TrainingRequest): Promise<void>;
}

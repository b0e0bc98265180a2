/** Starts a training run (ECS RunTask in AWS, a subprocess locally). */
export interface TrainingRequest {
  jobId: string;
  maxMinutes?: number;
}

export interface TrainingLauncher {
  launch(request: TrainingRequest): Promise<void>;
}

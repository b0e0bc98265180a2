/** Starts a training run (ECS RunTask in AWS, a subprocess locally). */
export interface TrainingRequest {
  jobId: string;
  maxMinutes?: number;
  /** The trainer command: a training run (default), `init` to publish a first model, `import` to evaluate and publish an uploaded encoder. */
  command?: 'run' | 'init' | 'import';
  /** For `import`: the upload under imports/<importId>/ (request.json, the ONNX, optional weights). */
  importId?: string;
}

export interface TrainingLauncher {
  launch(request: TrainingRequest): Promise<void>;
}

/** The trainer's command line after `python -m pipeline_trainer` (the ECS container command, the local subprocess). */
export function trainerCommand(request: TrainingRequest): string[] {
  if (request.command === 'init') return ['init'];
  const budget = request.maxMinutes ? ['--max-minutes', String(request.maxMinutes)] : [];
  if (request.command === 'import') {
    if (!request.importId) throw new Error('an import job needs its importId');
    return ['import', '--job-id', request.jobId, '--import-id', request.importId, ...budget];
  }
  return ['run', '--job-id', request.jobId, ...budget];
}

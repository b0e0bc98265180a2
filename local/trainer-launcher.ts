/**
 * TrainingLauncher for the embedded stack: the trainer as a subprocess (the same package the ECS
 * task runs), talking to the local S3 server. Its output goes to a log file per job.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, openSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { trainerCommand, type TrainingLauncher, type TrainingRequest } from '../shared/ports/training-launcher';

export interface SubprocessTrainerOptions {
  pythonBin: string;
  repoRoot: string;
  s3Endpoint: string;
  logDir: string;
  onExit?: (jobId: string, code: number | null) => void;
}

export function trainerEnv(options: Pick<SubprocessTrainerOptions, 'repoRoot' | 's3Endpoint'>): NodeJS.ProcessEnv {
  return {
    ...process.env,
    PYTHONPATH: join(options.repoRoot, 'gpu-trainer'),
    PYTHONUNBUFFERED: '1',
    S3_ENDPOINT_URL: options.s3Endpoint,
    AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID ?? 'local',
    AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY ?? 'local',
    AWS_REGION: process.env.AWS_REGION ?? 'us-east-1',
  };
}

export class SubprocessTrainingLauncher implements TrainingLauncher {
  constructor(private readonly options: SubprocessTrainerOptions) {}

  async launch(request: TrainingRequest): Promise<void> {
    mkdirSync(this.options.logDir, { recursive: true });
    const logFd = openSync(join(this.options.logDir, `${request.jobId}.log`), 'a');
    const args = ['-m', 'pipeline_trainer', ...trainerCommand(request)];
    // PIPELINE_PARENT_PID: the trainer dies with this process (no orphan holding the lease after a crash).
    const env = { ...trainerEnv(this.options), TRAINER_CACHE_DIR: join(this.options.logDir, '..', 'trainer-cache'), PIPELINE_PARENT_PID: String(process.pid) };
    const child = spawn(this.options.pythonBin, args, { cwd: this.options.repoRoot, env, stdio: ['ignore', logFd, logFd] });
    closeSync(logFd);
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', () => resolve());
      child.once('error', reject);
    });
    child.once('exit', (code) => this.options.onExit?.(request.jobId, code));
  }
}

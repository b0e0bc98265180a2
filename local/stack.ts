/**
 * The embedded stack's composition root: the same handlers and use cases as in AWS, wired to
 * local adapters (S3-compatible server, durable queues, on-disk vector index, trainer subprocess).
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Logger } from '@aws-lambda-powertools/logger';
import { createApiHandler } from '../functions/api/handler';
import { createAugmentHandler } from '../functions/augment/handler';
import { createEmbedHandler } from '../functions/embed/handler';
import { LocalDeadLetterQueue } from '../shared/adapters/local-dead-letters';
import { LocalQueue } from '../shared/adapters/local-queue';
import { LocalVectorStore } from '../shared/adapters/local-vector-index';
import { OnnxEncoderFactory } from '../shared/adapters/onnx-encoder';
import type { LocalStackConfig } from '../shared/config';
import { CanonicalHandoff } from '../shared/canonical-handoff';
import { IndexResolver } from '../shared/index-resolver';
import { ModelRegistry } from '../shared/model-registry';
import { s3EventBody } from '../shared/s3-event';
import { reconcile } from '../shared/use-cases/reconcile';
import { isMigrated } from '../shared/use-cases/derived-migration';
import { migrateDerived, type MigrationDeps } from '../shared/use-cases/migrate-derived';
import { lifecycleTick } from '../shared/use-cases/lifecycle';
import { abandonInterruptedRun, finishRun } from '../shared/use-cases/training';
import { health } from '../shared/use-cases/status';
import { LocalApiServer } from './api-server';
import { buildConsoleAssets } from './console-assets';
import { QueueWorker, RecordErrors } from './queue-worker';
import { LocalS3Server } from './s3-server';
import { SubprocessTrainingLauncher, trainerEnv } from './trainer-launcher';

export const IMAGES_BUCKET = 'images';
export const ARTIFACTS_BUCKET = 'artifacts';

export interface StackOptions {
  config: LocalStackConfig;
  repoRoot: string;
  log?: (line: string) => void;
  /** Seconds between progress lines while work is pending (0: none). */
  progressIntervalSeconds?: number;
}

export interface RunningStack {
  s3Endpoint: string;
  apiUrl: string;
  dataDir: string;
  queues: { ingest: LocalQueue; ingestDlq: LocalQueue; embed: LocalQueue; embedDlq: LocalQueue };
  close(): Promise<void>;
}

export async function startStack(options: StackOptions): Promise<RunningStack> {
  const { config } = options;
  const log = options.log ?? ((line: string) => console.log(line));
  const dataDir = resolve(config.dataDir);
  mkdirSync(dataDir, { recursive: true });
  const releaseLock = acquireDataDirLock(dataDir);
  const closers: Array<() => Promise<void>> = [async () => releaseLock()];
  const closeAll = async () => {
    for (const close of closers.reverse()) await close().catch((err) => log(`[pipeline] error while stopping: ${(err as Error).message}`));
  };

  try {
    const queueOptions = { visibilityTimeoutMs: config.visibilityTimeoutMs, maxReceives: config.maxReceives };
    const queueDir = join(dataDir, 'queues');
    const ingestDlq = await LocalQueue.open(queueDir, 'ingest-dlq', queueOptions);
    const ingest = await LocalQueue.open(queueDir, 'ingest', { ...queueOptions, deadLetterQueue: ingestDlq });
    const embedDlq = await LocalQueue.open(queueDir, 'embed-dlq', queueOptions);
    const embed = await LocalQueue.open(queueDir, 'embed', { ...queueOptions, deadLetterQueue: embedDlq });
    closers.push(async () => {
      for (const q of [ingest, ingestDlq, embed, embedDlq]) await q.close();
    });

    const s3 = await LocalS3Server.start({
      dataDir: join(dataDir, 's3'),
      host: config.host,
      port: config.s3Port,
      buckets: [IMAGES_BUCKET, ARTIFACTS_BUCKET],
      // The S3 bucket notification of the AWS deployment: images -> ingest queue.
      onEvent: async (event) => {
        if (event.bucket === IMAGES_BUCKET) await ingest.send([s3EventBody(event)]);
      },
    });
    closers.push(() => s3.close());

    // The workers reach the storage in process (the same objects, locks, conditional writes and
    // events as over HTTP, without a loopback round trip, signing and XML per call: measured 4x
    // less CPU per image, see docs/BENCHMARKS.md). Users, the CLI and the trainer use S3 over HTTP.
    const store = s3.objectStore();
    const vectorStore = new LocalVectorStore(join(dataDir, 'vectors'));
    closers.push(() => vectorStore.close());
    const models = new ModelRegistry(store, ARTIFACTS_BUCKET, new OnnxEncoderFactory());
    const indexes = new IndexResolver(vectorStore);

    if (!(await models.servingPointer())) {
      log('[pipeline] no model yet: publishing a randomly initialised encoder as v0 (trainer init)');
      await runTrainerInit(config.pythonBin, options.repoRoot, s3.endpoint, log);
      // Ready means a model is serving: the API below shares this registry.
      if (!(await models.servingPointer())) throw new Error('trainer init exited 0 but published no serving model (models/serving.json)');
    }

    const settings = {
      maxImageBytes: config.maxImageBytes,
      maxImagePixels: config.maxImagePixels,
      augmentViews: config.augmentViews,
      derived: config.derived,
      retrain: config.retrain,
      indexRetentionMs: config.indexRetentionMs,
    };
    const logLevel = config.logLevel.toUpperCase() as 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
    const launcher = new SubprocessTrainingLauncher({
      pythonBin: config.pythonBin,
      repoRoot: options.repoRoot,
      s3Endpoint: s3.endpoint,
      logDir: join(dataDir, 'training-logs'),
      onExit: (jobId, code) => {
        log(`[pipeline] training job ${jobId} exited with code ${code}`);
        void finishRun({ store, artifactsBucket: ARTIFACTS_BUCKET }, jobId, `trainer exited with code ${code}`).catch((err) =>
          log(`[pipeline] could not record the end of ${jobId}: ${(err as Error).message}`),
        );
      },
    });
    // augment and embed share this process: embed takes the working image augment just stored.
    const handoff = new CanonicalHandoff();
    const common = { store, models, indexes, imagesBucket: IMAGES_BUCKET, artifactsBucket: ARTIFACTS_BUCKET, settings };
    // Each failed record's error travels from the handler's SQS edge to its worker, into the DLQ.
    const augmentErrors = new RecordErrors();
    const embedErrors = new RecordErrors();
    const augmentHandler = createAugmentHandler({ ...common, embedQueue: embed, handoff }, new Logger({ serviceName: 'augment', logLevel }), {
      onRecordFailure: augmentErrors.onRecordFailure,
    });
    const embedHandler = createEmbedHandler({ ...common, handoff }, new Logger({ serviceName: 'embed', logLevel }), {
      onRecordFailure: embedErrors.onRecordFailure,
    });
    const deadLetters = [new LocalDeadLetterQueue('ingest', ingestDlq, ingest), new LocalDeadLetterQueue('embed', embedDlq, embed)];
    const apiHandler = createApiHandler({ ...common, pendingQueues: [ingest, embed], launcher, deadLetters }, new Logger({ serviceName: 'api', logLevel }));

    const abandoned = await abandonInterruptedRun(common, 'the embedded stack stopped while this run was in progress; the run was abandoned');
    if (abandoned) log(`[pipeline] training run ${abandoned} was interrupted by a stop or crash: marked failed, training lock released`);

    const recovered = await reconcile({ ...common, ingestQueue: ingest });
    if (recovered.enqueued > 0 || recovered.orphansRemoved > 0) {
      log(`[pipeline] reconciled ${recovered.images} images: ${recovered.enqueued} re-queued, ${recovered.orphansRemoved} orphan vectors removed`);
    }

    const onError = (err: unknown) => log(`[pipeline] worker error: ${(err as Error).message}`);
    const workers = [
      new QueueWorker({ queue: ingest, handler: augmentHandler, recordErrors: augmentErrors, batchSize: 10, concurrency: config.workerConcurrency, onError }),
      new QueueWorker({ queue: embed, handler: embedHandler, recordErrors: embedErrors, batchSize: 32, concurrency: config.workerConcurrency, onError }),
    ];
    for (const w of workers) w.start();
    closers.push(async () => {
      await Promise.all(workers.map((w) => w.stop()));
    });

    // Data written before derived images were independent of the model (or with a smaller
    // WORKING_SIZE): re-derived from the originals in the background, resumably, with progress.
    const migration = startMigration({ ...common, embedQueue: embed }, config.workerConcurrency, log);
    closers.push(migration.stop);

    // The lifecycle tick (a scheduled function in AWS): retrain trigger, index retention, rollout.
    let ticking = false;
    let lastRollout = '';
    const lifecycleDeps = {
      ...common,
      embedQueue: embed,
      launcher,
      policy: config.retrain,
      indexRetentionMs: config.indexRetentionMs,
      backlog: config.rolloutBacklog,
    };
    const lifecycle = setInterval(() => {
      if (ticking) return;
      ticking = true;
      lifecycleTick(lifecycleDeps)
        .then(({ training, pruned, rollout }) => {
          if (training.started) log(`[pipeline] training ${training.started} started (${training.reason})`);
          if (pruned.length > 0) log(`[pipeline] deleted retired indexes ${pruned.join(', ')}`);
          const line =
            rollout.state === 'backfilling'
              ? `[pipeline] rollout of ${rollout.version}: ${rollout.done}/${rollout.total} re-embedded`
              : rollout.state === 'flipped'
                ? `[pipeline] rollout complete: ${rollout.version} is serving (previous: ${rollout.previous})`
                : rollout.state === 'discarded'
                  ? `[pipeline] candidate ${rollout.version} discarded: ${rollout.reason}`
                  : '';
          if (line && line !== lastRollout) log(line);
          lastRollout = line;
        })
        .catch((err) => log(`[pipeline] lifecycle tick failed: ${(err as Error).message}`))
        .finally(() => (ticking = false));
    }, config.lifecycleIntervalMs);
    lifecycle.unref();
    closers.push(async () => clearInterval(lifecycle));

    const api = await LocalApiServer.start(apiHandler, config.host, config.apiPort, await buildConsoleAssets());
    closers.push(() => api.close());

    const interval = options.progressIntervalSeconds ?? 5;
    if (interval > 0) {
      let last = '';
      const timer = setInterval(() => {
        void health({ ...common, pendingQueues: [ingest, embed] })
          .then(async (h) => {
            const dead = (await ingestDlq.depth()).visible + (await embedDlq.depth()).visible;
            const line = `[pipeline] indexed ${h.indexed} · pending ${h.pending} · quarantined ${h.quarantined}${dead ? ` · dead-lettered ${dead}` : ''} · model ${h.servingModel}`;
            if (line !== last && (h.pending > 0 || last !== '')) log(line);
            last = line;
          })
          .catch(() => undefined);
      }, interval * 1000);
      timer.unref();
      closers.push(async () => clearInterval(timer));
    }

    return {
      s3Endpoint: s3.endpoint,
      apiUrl: `http://${config.host}:${api.port}`,
      dataDir,
      queues: { ingest, ingestDlq, embed, embedDlq },
      close: closeAll,
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

function startMigration(deps: MigrationDeps, concurrency: number, log: (line: string) => void): { stop: () => Promise<void> } {
  let stopping = false;
  const sizes = deps.settings.derived;
  const run = (async () => {
    if (await isMigrated(deps, sizes)) return;
    let lastLine = 0;
    const result = await migrateDerived(deps, {
      concurrency,
      shouldStop: () => stopping,
      onProgress: (p) => {
        if (p.total === 0) return;
        if (p.done === 0 && p.failed === 0) {
          log(
            `[pipeline] ${p.total} of ${p.scanned} images are stored below the working resolution (${sizes.workingSize} px) or without a thumbnail: re-deriving them from their originals`,
          );
          return;
        }
        if (Date.now() - lastLine >= 2000 || p.done + p.failed === p.total) {
          lastLine = Date.now();
          log(`[pipeline] migration: ${p.done}/${p.total} re-derived${p.failed ? `, ${p.failed} failed` : ''}`);
        }
      },
    });
    if (stopping) {
      log(`[pipeline] migration paused at ${result.done}/${result.total}: it continues on the next start`);
    } else if (result.total > 0) {
      const other = Object.entries(result.outcomes)
        .filter(([k]) => k !== 'augmented')
        .map(([k, n]) => `${n} ${k}`);
      log(`[pipeline] migration complete: ${result.done} images re-derived at ${sizes.workingSize} px${other.length ? ` (${other.join(', ')})` : ''}`);
    }
  })().catch((err) => log(`[pipeline] migration stopped: ${(err as Error).message}`));
  return {
    stop: async () => {
      stopping = true;
      await run;
    },
  };
}

function acquireDataDirLock(dataDir: string): () => void {
  const lockFile = join(dataDir, 'stack.pid');
  if (existsSync(lockFile)) {
    const pid = Number(readFileSync(lockFile, 'utf8').trim());
    if (pid && pid !== process.pid && isAlive(pid)) {
      throw new Error(`another stack (pid ${pid}) is running on ${dataDir}; stop it or set PIPELINE_DATA_DIR to another directory`);
    }
  }
  writeFileSync(lockFile, String(process.pid));
  return () => rmSync(lockFile, { force: true });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function runTrainerInit(pythonBin: string, repoRoot: string, s3Endpoint: string, log: (line: string) => void): Promise<void> {
  if (pythonBin.includes('/') && !existsSync(resolve(repoRoot, pythonBin))) {
    throw new Error(`Python environment not found at ${pythonBin}: run "bash scripts/ensure-python.sh" (npm start does this) or set PIPELINE_PYTHON`);
  }
  const child = spawn(pythonBin, ['-m', 'pipeline_trainer', 'init'], {
    cwd: repoRoot,
    env: trainerEnv({ repoRoot, s3Endpoint }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => {
    output += d.toString();
    for (const line of d.toString().split('\n')) if (line.trim()) log(`[trainer] ${line.trim()}`);
  });
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const code = await new Promise<number | null>((res, rej) => {
    child.once('error', rej);
    child.once('exit', res);
  });
  if (code !== 0) throw new Error(`trainer init failed with exit code ${code}:\n${output.slice(-4000)}`);
}

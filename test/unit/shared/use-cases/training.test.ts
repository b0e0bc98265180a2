import { ConflictError } from '../../../../shared/errors';
import type { TrainingRequest } from '../../../../shared/ports/training-launcher';
import { acquireTrainingLock, readLease, releaseTrainingLock } from '../../../../shared/use-cases/training-lock';
import { finishRun, retrainReason, retrainTick, startTraining, type RetrainPolicy } from '../../../../shared/use-cases/training';
import { InMemoryObjectStore } from '../../../support/fakes';

const BUCKET = 'artifacts';

function setup(policy: Partial<RetrainPolicy> = {}) {
  let t = Date.parse('2026-11-28T10:00:00Z');
  const store = new InMemoryObjectStore();
  const launched: TrainingRequest[] = [];
  let n = 0;
  const deps = {
    store,
    artifactsBucket: BUCKET,
    launcher: { launch: async (r: TrainingRequest) => void launched.push(r) },
    policy: { minNewLabels: 3, intervalMinutes: 0, maxMinutes: 4, ...policy },
    newJobId: () => `job-${++n}`,
    now: () => new Date(t),
  };
  return { deps, store, launched, advance: (ms: number) => (t += ms) };
}

async function writeRunOutcome(store: InMemoryObjectStore, jobId: string, state: 'published' | 'failed') {
  const body = store.json(BUCKET, `runs/${jobId}.json`) as Record<string, unknown>;
  await store.put(BUCKET, `runs/${jobId}.json`, JSON.stringify({ ...body, state, finishedAt: body.startedAt }));
}

describe('training lock', () => {
  it('admits one holder until it releases or its lease expires', async () => {
    const { deps, advance } = setup();
    expect(await acquireTrainingLock(deps, 'a', 60_000)).toBe(true);
    expect(await acquireTrainingLock(deps, 'b', 60_000)).toBe(false);
    await releaseTrainingLock(deps, 'b');
    expect(await acquireTrainingLock(deps, 'b', 60_000)).toBe(false);
    await releaseTrainingLock(deps, 'a');
    expect(await acquireTrainingLock(deps, 'b', 60_000)).toBe(true);
    advance(60_001);
    expect(await acquireTrainingLock(deps, 'c', 60_000)).toBe(true);
    expect((await readLease(deps))!.lease.jobId).toBe('c');
  });

  it('lets exactly one of two racing holders win', async () => {
    const { deps } = setup();
    const results = await Promise.all([acquireTrainingLock(deps, 'x', 1000), acquireTrainingLock(deps, 'y', 1000)]);
    expect(results.filter(Boolean)).toHaveLength(1);
  });
});

describe('startTraining', () => {
  it('takes the lock, records the run, launches with the default budget, and refuses a second run with 409', async () => {
    const { deps, store, launched } = setup();
    expect(await startTraining(deps, {})).toEqual({ jobId: 'job-1' });
    expect(launched).toEqual([{ jobId: 'job-1', maxMinutes: 4 }]);
    expect(store.json(BUCKET, 'runs/job-1.json')).toMatchObject({ jobId: 'job-1', state: 'running', maxMinutes: 4 });
    await expect(startTraining(deps, { maxMinutes: 2 })).rejects.toThrow(ConflictError);
    await writeRunOutcome(store, 'job-1', 'published');
    expect(await startTraining(deps, { maxMinutes: 2 })).toEqual({ jobId: 'job-3' });
  });

  it('marks the run failed and frees the lock when the trainer cannot start or exits early', async () => {
    const { deps, store } = setup();
    const failing = { ...deps, launcher: { launch: async () => Promise.reject(new Error('no python')) } };
    await expect(startTraining(failing, {})).rejects.toThrow('no python');
    expect(store.json(BUCKET, 'runs/job-1.json')).toMatchObject({ state: 'failed', error: 'could not start the trainer: no python' });
    const { jobId } = await startTraining(deps, {});
    await finishRun(deps, jobId, 'trainer exited with code 137');
    expect(store.json(BUCKET, `runs/${jobId}.json`)).toMatchObject({ state: 'failed', error: 'trainer exited with code 137' });
    expect((await readLease(deps))!.lease.released).toBe(true);
  });
});

describe('retrainReason', () => {
  const policy = { minNewLabels: 30, intervalMinutes: 60, maxMinutes: 4 };
  const now = new Date('2026-11-28T12:00:00Z');
  it.each([
    [{ runActive: true, labelsSinceLastRun: 100 }, undefined],
    [{ runActive: false, labelsSinceLastRun: 30, lastRunStartedAt: new Date('2026-11-28T11:59:00Z') }, 'labels'],
    [{ runActive: false, labelsSinceLastRun: 29, lastRunStartedAt: new Date('2026-11-28T11:30:00Z') }, undefined],
    [{ runActive: false, labelsSinceLastRun: 0, lastRunStartedAt: new Date('2026-11-28T11:00:00Z') }, 'schedule'],
    [{ runActive: false, labelsSinceLastRun: 0 }, 'schedule'],
  ])('%o -> %s', (state, expected) => {
    expect(retrainReason({ now, ...state }, policy)).toBe(expected);
  });

  it('never fires when both triggers are off', () => {
    expect(retrainReason({ now, runActive: false, labelsSinceLastRun: 1e6 }, { minNewLabels: 0, intervalMinutes: 0, maxMinutes: 1 })).toBeUndefined();
  });
});

describe('retrainTick', () => {
  it('starts one run once enough labels arrived, none while it runs, and counts only labels newer than the last run', async () => {
    const { deps, store, launched, advance } = setup({ minNewLabels: 3 });
    for (const i of [1, 2]) await store.put(BUCKET, `labels/${i}.json`, '{}');
    expect(await retrainTick(deps)).toEqual({});
    await store.put(BUCKET, 'labels/3.json', '{}');
    expect(await retrainTick(deps)).toEqual({ started: 'job-1', reason: 'labels' });
    for (const i of [4, 5, 6]) await store.put(BUCKET, `labels/${i}.json`, '{}');
    expect(await retrainTick(deps)).toEqual({});
    await writeRunOutcome(store, 'job-1', 'published');
    advance(1000);
    expect(await retrainTick(deps)).toEqual({});
    expect(launched).toHaveLength(1);
  });
});

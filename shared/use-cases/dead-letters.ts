/** GET /dead-letters and POST /dead-letters/redrive: what failed for good, why, and a way to replay it. */
import { BadRequestError } from '../errors';
import type { DeadLetter, DeadLetterQueue } from '../ports/dead-letters';

export interface DeadLetterDeps {
  deadLetters: DeadLetterQueue[];
}

export interface DeadLettersView {
  queues: Array<{ queue: string; count: number; messages: DeadLetter[] }>;
}

export async function listDeadLetters(deps: DeadLetterDeps, limit: number): Promise<DeadLettersView> {
  return {
    queues: await Promise.all(deps.deadLetters.map(async (q) => ({ queue: q.name, count: await q.count(), messages: await q.peek(limit) }))),
  };
}

export async function redriveDeadLetters(deps: DeadLetterDeps, queue?: string): Promise<{ redriven: Record<string, number> }> {
  const chosen = queue === undefined ? deps.deadLetters : deps.deadLetters.filter((q) => q.name === queue);
  if (chosen.length === 0) throw new BadRequestError(`unknown queue "${queue}"; use one of ${deps.deadLetters.map((q) => q.name).join(', ')}`);
  const redriven: Record<string, number> = {};
  for (const q of chosen) redriven[q.name] = await q.redrive();
  return { redriven };
}

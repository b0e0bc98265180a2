/** The clock use cases read: `deps.now` when a test or caller gives one, the system clock otherwise. */
export interface Clock {
  now?: () => Date;
}

export function nowOf(deps: Clock): Date {
  return deps.now ? deps.now() : new Date();
}

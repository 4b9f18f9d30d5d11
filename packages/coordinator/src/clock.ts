// High-resolution timing (process.hrtime.bigint) in fractional milliseconds.

export type Stamp = bigint;

export const now = (): Stamp => process.hrtime.bigint();

export function msSince(start: Stamp, end: Stamp = now()): number {
  return Number(end - start) / 1e6;
}

/**
 * Resolves after `ms`, or as soon as `signal` aborts (at once if it already has); never rejects,
 * and leaves no timer or listener behind. The one sleep of the coordinator and the daemon.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted === true) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

// High-resolution timing (process.hrtime.bigint) in fractional milliseconds.

export type Stamp = bigint;

export const now = (): Stamp => process.hrtime.bigint();

export function msSince(start: Stamp, end: Stamp = now()): number {
  return Number(end - start) / 1e6;
}

export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => {
    setTimeout(resolve, ms);
  });

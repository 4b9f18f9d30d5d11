/** Progress lines with elapsed time for long steps, on stderr so stdout stays machine-readable. */
export type Progress = (message: string) => void;

export function stderrProgress(prefix = "lab"): Progress {
  const start = Date.now();
  return (message) => {
    const s = ((Date.now() - start) / 1000).toFixed(1);
    process.stderr.write(`[${prefix} +${s}s] ${message}\n`);
  };
}

export const silent: Progress = () => undefined;

/** Runs a step and reports how long it took. */
export async function timed<T>(progress: Progress, what: string, step: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  progress(`${what}...`);
  const result = await step();
  progress(`${what}: done in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
  return result;
}

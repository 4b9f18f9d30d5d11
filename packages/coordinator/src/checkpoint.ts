// A Remus-style checkpoint loop without the memory copy: suspend, resume fast, wait.
import { msSince, now, sleep } from "./clock";
import { errorText } from "./errors";
import type { CycleTimings, SuspendSession } from "./session";
import { summarize, type Summary } from "./stats";

export interface CheckpointOptions {
  /** Pause between cycles (end of one to start of the next). 0 still yields to the event loop. */
  intervalMs: number;
  count: number;
  signal?: AbortSignal;
  timeoutMs?: number;
  onCycle?: (timings: CycleTimings, index: number) => void;
}

export interface CheckpointStats {
  requested: number;
  ok: number;
  failed: number;
  stoppedBy: "count" | "signal" | "error";
  errors: string[];
  samples: CycleTimings[];
  suspendMs: Summary;
  resumeMs: Summary;
  totalMs: Summary;
  /** Wall time of the whole loop, intervals included. */
  elapsedMs: number;
  /** Completed cycles per second of wall time: the rate a Remus-style loop sustains. */
  cyclesPerSecond: number;
}

export async function checkpointLoop(session: SuspendSession, opts: CheckpointOptions): Promise<CheckpointStats> {
  const samples: CycleTimings[] = [];
  const errors: string[] = [];
  let stoppedBy: CheckpointStats["stoppedBy"] = "count";
  const aborted = (): boolean => opts.signal?.aborted === true;
  const t0 = now();
  for (let i = 0; i < opts.count; i++) {
    if (aborted()) {
      stoppedBy = "signal";
      break;
    }
    try {
      const t = await session.cycle(undefined, opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs });
      samples.push(t);
      opts.onCycle?.(t, i);
    } catch (err) {
      if (aborted()) {
        stoppedBy = "signal";
        break;
      }
      // The first failure ends the loop (the session leaves the guest running).
      errors.push(errorText(err));
      stoppedBy = "error";
      break;
    }
    // setTimeout(0) costs a whole millisecond; interval 0 only yields to the event loop.
    if (i + 1 < opts.count) await (opts.intervalMs > 0 ? sleep(opts.intervalMs) : new Promise<void>((r) => { setImmediate(r); }));
  }
  const elapsedMs = msSince(t0);
  return {
    requested: opts.count,
    ok: samples.length,
    failed: errors.length,
    stoppedBy,
    errors,
    samples,
    suspendMs: summarize(samples.map((s) => s.suspendMs)),
    resumeMs: summarize(samples.map((s) => s.resumeMs)),
    totalMs: summarize(samples.map((s) => s.totalMs)),
    elapsedMs,
    cyclesPerSecond: elapsedMs > 0 ? (samples.length * 1000) / elapsedMs : 0,
  };
}

// The one checkpoint runner, for every caller (the CLI's `checkpoint`, fastsuspendd's loops): a
// Remus-style loop without the memory copy (suspend, resume fast, wait), its stop rules (count,
// abort signal, failure budget, domain gone), its counts and one latency summary. What differs per
// caller comes in as hooks: the daemon serialises each attempt with its other work on the domain
// (`around`), skips a cycle while libxl owns the domain (`before`: its suspend lock held, xl seen),
// lets go of libxl's locks after it (`after`) and watches for libxl during the wait (`gap`).
import { msSince, now, sleep } from "./clock";
import { errorText, isDomainEnded } from "./errors";
import type { CycleTimings } from "./session";
import { summarize, type Summary } from "./stats";

/** What `before` says of the next cycle: run it, skip it (and why), or stop: the domain is gone. */
export type CycleVerdict = { run: true } | { skip: string } | { gone: string };

/** How one attempt ended. "interrupted": the signal stopped it mid-cycle (neither ok nor failed). */
export type CycleOutcome =
  | { result: "ok"; timings: CycleTimings }
  | { result: "failed"; error: unknown }
  | { result: "skipped"; why: string }
  | { result: "gone"; why: string }
  | { result: "interrupted" };

export interface CheckpointCounts {
  /** Cycles attempted (ok + failed); skipped and interrupted ones do not count toward `count`. */
  done: number;
  ok: number;
  failed: number;
  /** Cycles not attempted: `before` said skip (another tool had the domain). */
  skipped: number;
  lastError: string | null;
  lastSkip: string | null;
}

export interface CheckpointHooks {
  /** One cycle: suspend, resume (`session.cycle`). Its error is a failed cycle. */
  cycle: () => Promise<CycleTimings>;
  /** Wraps each attempt, `before` to `after` (the daemon: its per-domain queue and request gate). */
  around?: <T>(attempt: () => Promise<T>) => Promise<T>;
  /** Before each cycle: run it, skip it, or end the loop (default: run). A throw ends the loop. */
  before?: () => Promise<CycleVerdict> | CycleVerdict;
  /** After each attempt that `before` let through or turned down, whatever came of it. */
  after?: (outcome: CycleOutcome) => Promise<void> | void;
  /** The wait between two attempts (default: sleep `intervalMs`; 0 only yields to the event loop). */
  gap?: (intervalMs: number, signal: AbortSignal | undefined) => Promise<void>;
  /** Every attempt's outcome, with the counts after it (progress, metrics, logs). */
  onCycle?: (outcome: CycleOutcome, counts: Readonly<CheckpointCounts>) => void;
}

export interface CheckpointOptions extends CheckpointHooks {
  /** Pause between attempts (end of one to start of the next). */
  intervalMs: number;
  /** Cycles to run (see CheckpointCounts.done); undefined: until the signal or the budget stops it. */
  count?: number;
  signal?: AbortSignal;
  /** Failed cycles in a row after which the loop stops (default 1: the first failure ends it). */
  failureBudget?: number;
  /** Newest samples kept for the summary (default: all of them). */
  keepSamples?: number;
}

/** Why the loop ended: its count, the signal, the failure budget, or the domain went away. */
export type CheckpointStop = "count" | "signal" | "error" | "gone";

/** Per-phase latency of the samples kept (ms). */
export interface CheckpointSummary {
  suspendMs: Summary;
  resumeMs: Summary;
  totalMs: Summary;
}

export interface CheckpointStats extends CheckpointCounts, CheckpointSummary {
  /** The count asked for (null: until stopped). */
  requested: number | null;
  stoppedBy: CheckpointStop;
  /** Every failed cycle's error, in order. */
  errors: string[];
  /** The samples kept (see keepSamples), oldest first. */
  samples: CycleTimings[];
  /** Wall time of the whole loop, gaps included. */
  elapsedMs: number;
  /** Completed cycles per second of wall time: the rate a Remus-style loop sustains. */
  cyclesPerSecond: number;
}

// setTimeout(0) costs a whole millisecond; interval 0 only yields to the event loop.
const defaultGap = (ms: number, signal: AbortSignal | undefined): Promise<void> =>
  ms > 0 ? sleep(ms, signal) : new Promise<void>((r) => { setImmediate(r); });

export class CheckpointRunner {
  readonly #opts: CheckpointOptions;
  readonly #counts: CheckpointCounts = { done: 0, ok: 0, failed: 0, skipped: 0, lastError: null, lastSkip: null };
  readonly #samples: CycleTimings[] = [];
  readonly #errors: string[] = [];
  #inARow = 0;

  constructor(opts: CheckpointOptions) {
    this.#opts = opts;
  }

  /** The counts so far (live while the loop runs). */
  get counts(): Readonly<CheckpointCounts> {
    return this.#counts;
  }

  /** The latency of the samples kept so far. */
  summary(): CheckpointSummary {
    const s = this.#samples;
    return { suspendMs: summarize(s.map((t) => t.suspendMs)), resumeMs: summarize(s.map((t) => t.resumeMs)), totalMs: summarize(s.map((t) => t.totalMs)) };
  }

  #aborted(): boolean {
    return this.#opts.signal?.aborted === true;
  }

  #countReached(): boolean {
    return this.#opts.count !== undefined && this.#counts.done >= this.#opts.count;
  }

  /** Runs the loop to its end. Throws only what `around`, `before` or `after` throw. */
  async run(): Promise<CheckpointStats> {
    const o = this.#opts;
    const t0 = now();
    let stoppedBy: CheckpointStop = "count";
    while (!this.#countReached()) {
      if (this.#aborted()) {
        stoppedBy = "signal";
        break;
      }
      const around = o.around ?? (<T>(f: () => Promise<T>): Promise<T> => f());
      const outcome = await around(() => this.#attempt());
      this.#record(outcome);
      if (outcome.result === "gone") {
        stoppedBy = "gone";
        break;
      }
      if (outcome.result === "interrupted") {
        stoppedBy = "signal";
        break;
      }
      if (outcome.result === "failed" && isDomainEnded(outcome.error)) {
        stoppedBy = "gone";
        break;
      }
      if (outcome.result === "failed" && this.#inARow >= (o.failureBudget ?? 1)) {
        stoppedBy = "error";
        break;
      }
      if (this.#countReached()) break;
      await (o.gap ?? defaultGap)(o.intervalMs, o.signal);
    }
    const elapsedMs = msSince(t0);
    return {
      ...this.#counts,
      ...this.summary(),
      requested: o.count ?? null,
      stoppedBy,
      errors: [...this.#errors],
      samples: [...this.#samples],
      elapsedMs,
      cyclesPerSecond: elapsedMs > 0 ? (this.#counts.ok * 1000) / elapsedMs : 0,
    };
  }

  async #attempt(): Promise<CycleOutcome> {
    const o = this.#opts;
    if (this.#aborted()) return { result: "interrupted" };
    // What `after` is told if `before` or the cycle throws: nothing came of the attempt.
    let outcome: CycleOutcome = { result: "interrupted" };
    try {
      const verdict = (await o.before?.()) ?? { run: true };
      if ("skip" in verdict) outcome = { result: "skipped", why: verdict.skip };
      else if ("gone" in verdict) outcome = { result: "gone", why: verdict.gone };
      else outcome = await this.#cycle();
      return outcome;
    } finally {
      await o.after?.(outcome);
    }
  }

  async #cycle(): Promise<CycleOutcome> {
    this.#counts.done++;
    try {
      return { result: "ok", timings: await this.#opts.cycle() };
    } catch (error) {
      if (!this.#aborted()) return { result: "failed", error };
      this.#counts.done--; // stopped mid-cycle: not a failure (the session leaves the guest running)
      return { result: "interrupted" };
    }
  }

  #record(outcome: CycleOutcome): void {
    const c = this.#counts;
    switch (outcome.result) {
      case "ok":
        c.ok++;
        this.#inARow = 0;
        this.#samples.push(outcome.timings);
        if (this.#opts.keepSamples !== undefined && this.#samples.length > this.#opts.keepSamples) this.#samples.splice(0, this.#samples.length - this.#opts.keepSamples);
        break;
      case "failed":
        c.failed++;
        this.#inARow++;
        c.lastError = errorText(outcome.error);
        this.#errors.push(c.lastError);
        break;
      case "skipped":
        c.skipped++;
        c.lastSkip = outcome.why;
        break;
      case "gone":
      case "interrupted":
        break;
    }
    this.#opts.onCycle?.(outcome, c);
  }
}

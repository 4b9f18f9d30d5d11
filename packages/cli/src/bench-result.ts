// The JSON that bench-run writes and the host side reads (and formatTable prints).
import type { Summary } from "@fastsuspend/coordinator";

export interface BenchPathResult {
  name: string;
  /** Cycles attempted. */
  n: number;
  ok: number;
  failed: number;
  /** Trigger -> confirmed suspended. */
  suspendMs: Summary;
  /** xc_domain_resume plus an inline XS_RESUME. */
  resumeMs: Summary;
  /** The whole cycle. */
  totalMs: Summary;
  phases?: { triggerMs: Summary; awaitMs: Summary; confirmMs: Summary; xsResumeMs: Summary };
  samples: { suspendMs: number[]; resumeMs: number[]; totalMs: number[] };
  /** Why cycles failed (first few), or why the path could not be opened. */
  errors: string[];
}

/**
 * Why a checkpoint loop ended: it ran its --count, its --for budget elapsed, a signal stopped it,
 * or a cycle failed.
 */
export type CheckpointStop = "count" | "time" | "signal" | "error";

/** `fastsuspend checkpoint DOM --interval 0 --count N [--for S] --json`, as the bench host keeps it. */
export interface CheckpointLoopResult {
  path: string;
  /** When XS_RESUME was sent: in the cycle, or after it (off the critical path). */
  xsResume: "inline" | "deferred";
  requested: number;
  ok: number;
  failed: number;
  errors: string[];
  elapsedMs: number;
  cyclesPerSecond: number;
  totalMs: Summary;
  /** Cycle median of each block of 100 cycles, in order: shows a rate that drifts over the loop. */
  totalMsPerHundred?: number[];
  /** The same per block of 1000 cycles: the drift over a long loop, in a line that stays short. */
  totalMsPerThousand?: number[];
  stoppedBy?: CheckpointStop;
  /** The loop's time budget (--for), when it had one. */
  budgetSeconds?: number;
  /** The bench's long loop (its drift over thousands of cycles), not a sustained-rate loop. */
  long?: boolean;
}

export interface BenchResult {
  xen: string;
  guestKernel: string;
  xenstored: string;
  domid: number;
  cycles: number;
  intervalMs: number;
  paths: BenchPathResult[];
  /** `xl save -c DOM /dev/null`, for scale (null when skipped or failed). */
  xlSaveCMs: (Summary & { samples: number[]; failed: number }) | null;
  /** Added by the bench host after bench-run (absent when skipped). */
  checkpointLoops?: CheckpointLoopResult[];
}

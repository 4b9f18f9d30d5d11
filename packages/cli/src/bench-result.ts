// The JSON that bench-run writes and the host side reads (and formatTable prints).
import type { Summary } from "@fastsuspend/coordinator";

/**
 * The guest's own account of its suspends (kernel patch 0005's tracepoints, read by the lab's
 * phases probe), added by the bench host: the guest's CLOCK_MONOTONIC, which stands still while
 * the domain is suspended.
 */
export interface GuestPhasesMs {
  /** Suspends the guest traced and summarised (a failed cycle may not have reached the guest). */
  n: number;
  /** Suspends left out because the guest's clock stepped back inside them (the nested lab's xen clocksource). */
  clockSteppedBack?: number;
  /** Request seen by the guest → its suspend hypercall. */
  suspend: Summary;
  /** The hypercall returns → tasks running again (after thaw_processes). */
  resume: Summary;
  /** Request seen → do_suspend() starts (the channel's work item, or xenwatch). */
  request?: Summary;
  /** Each traced step (freeze_processes, dpm_suspend, xs_suspend, stop_machine, xs_resume, ...). */
  steps: Record<string, Summary>;
}

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
  /** The XS_RESUME mode the path's cycles ran with ("auto" resolved: skip on oxenstored). */
  xsResume?: "inline" | "deferred" | "skip";
  /** The whole cycle. */
  totalMs: Summary;
  phases?: { triggerMs: Summary; awaitMs: Summary; confirmMs: Summary; xsResumeMs: Summary };
  samples: { suspendMs: number[]; resumeMs: number[]; totalMs: number[] };
  /** Why cycles failed (first few), or why the path could not be opened. */
  errors: string[];
  /** The guest's view of the same cycles (absent when the guest cannot tell). */
  guestMs?: GuestPhasesMs;
  /** "fast": a guest that suspends without the task freezer (kernel patch 0006); absent: the default. */
  guestSuspend?: "fast";
  /** The guest's type ("pv" when absent). */
  guestType?: "pv" | "pvh";
}

/**
 * Why a checkpoint loop ended: it ran its --count, its --for budget elapsed, a signal stopped it,
 * or a cycle failed.
 */
export type CheckpointStop = "count" | "time" | "signal" | "error";

/** `fastsuspend checkpoint DOM --interval 0 --count N [--for S] --json`, as the bench host keeps it. */
export interface CheckpointLoopResult {
  path: string;
  /**
   * When XS_RESUME was sent: in the cycle, after it (off the critical path), or never (the
   * default "auto" on oxenstored). The mode in effect, "auto" resolved.
   */
  xsResume: "inline" | "deferred" | "skip";
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
  /** "fast": on a guest that suspends without the task freezer (kernel patch 0006). */
  guestSuspend?: "fast";
}

/** A stock toolstack command run N times on one guest (the bench's toolstack table, issue 14). */
export interface ToolstackResult {
  tool: string;
  guestKernel: string;
  hypervisor: string;
  /** The guest's type ("pv" when absent: rows of runs before PVH). */
  guestType?: "pv" | "pvh";
  /**
   * Runs of xl; for `xl remus`, the checkpoints libxl issued in its one run (ok: those it saw the
   * guest suspend for), and blackoutMs per checkpoint.
   */
  n: number;
  ok: number;
  failed: number;
  /**
   * The guest's user-space blackout per run: its blackout probe's gap over libxl's "guest has
   * suspended" (for `xl remus`, per checkpoint: the longest gap in its period).
   */
  blackoutMs: Summary;
  /**
   * The probe's other gaps per run, summed (not `xl remus`): user space starved while the guest was
   * not suspended, e.g. during `xl migrate`'s pre-copy rounds in the TCG lab. Absent in older runs.
   */
  stallsMs?: Summary;
  totalMs: Summary;
  /**
   * libxl's phases: xl start → suspend request issued, request → guest suspended, suspended → xl
   * exits (memory copy, resume; under remus: → the next request). Split in two where the save
   * helper's progress marks the memory sent: suspended → memory sent (memoryMs), memory sent → xl
   * exits or the next request (afterMemoryMs: the stream's records, the resume, callbacks).
   */
  phases: { setupMs: Summary; suspendMs: Summary; saveAndResumeMs: Summary; memoryMs?: Summary; afterMemoryMs?: Summary };
  /** The guest's own suspend and resume (a kernel with patch 0005 only). */
  guestMs?: GuestPhasesMs;
  /** `xl remus`: checkpoints per second over its run. */
  perSecond?: number;
  errors: string[];
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
  xlSaveCMs: (Summary & { samples: number[]; failed: number; guestMs?: GuestPhasesMs }) | null;
  /** Added by the bench host after bench-run (absent when skipped). */
  checkpointLoops?: CheckpointLoopResult[];
  /** Added by the bench host: stock xl on a stock-kernel and a patched-kernel guest (absent when skipped). */
  toolstack?: ToolstackResult[];
}

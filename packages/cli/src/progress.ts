// A progress line on stderr every few seconds while a long checkpoint loop runs: an operator
// watching a 100000-cycle loop sees that it is alive, how far it got and at what rate.
import type { CliArgs } from "./args";
import type { Deps } from "./context";

export const PROGRESS_EVERY_MS = 5000;

export interface LoopCounts {
  /** Cycles attempted (ok + failed). */
  done: number;
  ok: number;
  failed: number;
  /** Cycles the daemon skipped while another tool had the domain (daemon loops only). */
  skipped?: number;
}

export interface ProgressOptions {
  /** Names the loop in the line, e.g. "checkpoint on domain 5". */
  label: string;
  /** The --count, shown as done/total. */
  total?: number;
  /** The counts now (read on each tick: the loop updates them, the reporter never waits on it). */
  read: () => LoopCounts;
  write: (line: string) => void;
  everyMs?: number;
  now?: () => number;
}

/**
 * Only when someone is watching (stderr a terminal) or asked for it (--progress): a script that
 * collects stderr, like the bench host, would otherwise store a line every 5 s of its loops.
 */
export function wantsProgress(a: CliArgs, deps: Deps): boolean {
  return a.progress === true || deps.stderrIsTTY === true;
}

export function progressLine(label: string, c: LoopCounts, total: number | undefined, perSecond: number): string {
  const done = total === undefined ? `${c.done}` : `${c.done}/${total}`;
  const skipped = c.skipped !== undefined && c.skipped > 0 ? `, ${c.skipped} skipped` : "";
  return `fastsuspend: ${label}: ${done} done, ${c.ok} ok, ${c.failed} failed${skipped}, ${perSecond.toFixed(1)}/s\n`;
}

/**
 * Writes a progress line every `everyMs` until the returned function is called. The rate is over
 * the last period, not since the start: it shows a loop that slows down (docs/guest-slowdown.md).
 * The timer is unref'd: it never keeps the CLI alive on its own.
 */
export function startProgress(o: ProgressOptions): () => void {
  const now = o.now ?? Date.now;
  let last = { at: now(), done: o.read().done };
  const timer = setInterval(() => {
    const c = o.read();
    const at = now();
    const perSecond = at > last.at ? ((c.done - last.done) * 1000) / (at - last.at) : 0;
    last = { at, done: c.done };
    o.write(progressLine(o.label, c, o.total, perSecond));
  }, o.everyMs ?? PROGRESS_EVERY_MS);
  timer.unref();
  return () => { clearInterval(timer); };
}

/** startProgress for a CLI invocation, or a no-op when wantsProgress says no. */
export function progressFor(a: CliArgs, deps: Deps, opts: Omit<ProgressOptions, "write" | "everyMs">): () => void {
  if (!wantsProgress(a, deps)) return () => undefined;
  return startProgress({ ...opts, write: deps.stderr, ...(deps.progressEveryMs === undefined ? {} : { everyMs: deps.progressEveryMs }) });
}

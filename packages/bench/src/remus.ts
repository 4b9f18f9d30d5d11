// `xl remus -b` (blackhole: memory copied every checkpoint, sent nowhere) on a guest for a fixed
// time, measured by the guest (issue 14): checkpoints per second, each checkpoint's blackout from
// the guest's probe, and libxl's request -> suspended per checkpoint from its -vvv lines.
import { summarize } from "@fastsuspend/coordinator";
import type { ToolstackResult } from "@fastsuspend/cli";
import { blackout, type BlackoutGap, type GuestType, type Lab } from "@fastsuspend/lab";

import { counted, droppedGaps, runningState, xlState, type ToolstackKernel, type ToolstackOptions } from "./toolstack";
import { firstMark, xlRunError, xlTimed, type XlRun } from "./xl-timed";

/** libxl's request -> suspended for each checkpoint that got both lines, in order. */
export function requestToSuspended(run: XlRun): number[] {
  const out: number[] = [];
  let j = 0;
  for (const [i, req] of run.requests.entries()) {
    const next = run.requests[i + 1] ?? Number.POSITIVE_INFINITY;
    while (j < run.suspended.length && (run.suspended[j] ?? 0) < req) j++;
    const s = run.suspended[j];
    if (s !== undefined && s < next) out.push(s - req);
  }
  return out;
}

/**
 * Each checkpoint's blackout as the guest saw it: the longest gap of the probe that began in the
 * checkpoint's period (its request to the next one's, both moved `slackMs` earlier: the probe's
 * last clock read comes before the request reaches the guest, and the two clocks differ a little).
 * The longest, not the sum: a period also holds the probe's noise (its floor), never a second
 * suspend. A checkpoint with no gap in its period gets none (the count says so). Nor does one
 * whose gap was still open when the script stopped xl: remus did not end that blackout, the stop
 * did (libxl's teardown, or the resume by hand of a guest xl left suspended: 2.2-2.4 s in
 * session 10's rows, 3.1-3.7 s in session 17's).
 */
export function blackoutPerCheckpoint(run: XlRun, gaps: readonly BlackoutGap[], o: { leftSuspended?: boolean; slackMs?: number } = {}): number[] {
  return checkpointGaps(run, gaps, o).flatMap((c) => (c.gap === undefined || c.cutByStop ? [] : [c.gap.bootMs]));
}

/** A checkpoint's longest gap, and whether that gap was still open when the script stopped xl. */
export interface CheckpointGap {
  gap?: BlackoutGap;
  cutByStop: boolean;
}

export function checkpointGaps(run: XlRun, gaps: readonly BlackoutGap[], o: { leftSuspended?: boolean; slackMs?: number } = {}): CheckpointGap[] {
  const slackMs = o.slackMs ?? 20;
  const at = (t: number): number => run.startRealMs + t - slackMs;
  const stopAt = run.stoppedAtMs === undefined ? Number.POSITIVE_INFINITY : run.startRealMs + run.stoppedAtMs;
  return run.requests.map((req, i) => {
    const from = at(req);
    const next = run.requests[i + 1];
    const to = next === undefined ? run.endRealMs + slackMs : at(next);
    const inPeriod = gaps.filter((g) => g.atRealMs >= from && g.atRealMs < to);
    const gap = inPeriod.reduce<BlackoutGap | undefined>((m, g) => (m === undefined || g.bootMs > m.bootMs ? g : m), undefined);
    // The last checkpoint of a run xl left the guest suspended in has no end of its own.
    const cutByStop = gap !== undefined && ((next === undefined && o.leftSuspended === true) || gap.atRealMs + gap.bootMs > stopAt);
    return gap === undefined ? { cutByStop: false } : { gap, cutByStop };
  });
}

/** One `xl remus` run of a row: libxl's marks, the probe's gaps in it, and whether xl left the guest suspended. */
export interface RemusRound {
  run: XlRun;
  gaps: readonly BlackoutGap[];
  leftSuspended: boolean;
}

/**
 * The row for a guest's remus runs (one, or several taken in turns with the other guests'): n
 * checkpoints issued, ok those libxl saw suspended, blackout per checkpoint, and the rate over the
 * time the runs checkpointed (each from its first request to its last).
 */
export function summarizeRemusRounds(tool: string, kernel: string, hypervisor: string, guestType: GuestType, rounds: readonly RemusRound[]): ToolstackResult {
  const each = rounds.map((r) => remusSamples(r));
  const all = (k: Series): number[] => each.flatMap((e) => e[k]);
  const spanMs = each.reduce((t, e) => t + e.spanMs, 0);
  const gaps = each.reduce((t, e) => t + e.intervals, 0);
  const first = rounds[0]?.run.requests[0];
  return {
    tool, guestKernel: kernel, hypervisor, guestType,
    n: rounds.reduce((t, r) => t + r.run.requests.length, 0), ok: all("toSuspended").length,
    failed: rounds.reduce((t, r) => t + r.run.requests.length, 0) - all("toSuspended").length,
    blackoutMs: summarize(all("blackouts")),
    // Checkpoint period: one request to the next.
    totalMs: summarize(all("periods")),
    phases: {
      setupMs: summarize(first === undefined ? [] : [first]),
      suspendMs: summarize(all("toSuspended")),
      // Suspended -> the next request: memory copy, resume, the interval.
      saveAndResumeMs: summarize(all("saveAndResume")),
      // Suspended -> the dirty pages sent; then -> the next request: the checkpoint's records, the
      // resume, xl's callbacks and the interval.
      memoryMs: summarize(all("memory")),
      afterMemoryMs: summarize(all("afterMemory")),
    },
    perSecond: spanMs > 0 ? (gaps * 1000) / spanMs : 0,
    errors: rounds.flatMap((r) => xlRunError(r.run) ?? []),
  };
}

/** The row for one remus run. */
export function summarizeRemus(tool: string, kernel: string, hypervisor: string, guestType: GuestType, run: XlRun, gaps: readonly BlackoutGap[], leftSuspended = false): ToolstackResult {
  return summarizeRemusRounds(tool, kernel, hypervisor, guestType, [{ run, gaps, leftSuspended }]);
}

type Series = "periods" | "toSuspended" | "blackouts" | "saveAndResume" | "memory" | "afterMemory";

type RemusRunSamples = Record<Series, number[]> & {
  /** First request to last, and the checkpoint intervals in it. */
  spanMs: number;
  intervals: number;
};

function remusSamples({ run, gaps, leftSuspended }: RemusRound): RemusRunSamples {
  // Each checkpoint's marks up to the next request: suspended, then its dirty pages sent.
  const marks = run.requests.slice(1).map((req, i) => {
    const suspended = firstMark(run.suspended, run.requests[i], req);
    return { req, suspended, memory: firstMark(run.memoryDone, suspended, req) };
  });
  const between = (f: (m: (typeof marks)[number]) => [number | undefined, number | undefined]): number[] =>
    marks.flatMap((m) => {
      const [a, b] = f(m);
      return a === undefined || b === undefined ? [] : [b - a];
    });
  const first = run.requests[0];
  const last = run.requests.at(-1);
  return {
    periods: run.requests.slice(1).map((t, i) => t - (run.requests[i] ?? t)),
    toSuspended: requestToSuspended(run),
    blackouts: blackoutPerCheckpoint(run, gaps, { leftSuspended }),
    saveAndResume: between((m) => [m.suspended, m.req]),
    memory: between((m) => [m.suspended, m.memory]),
    afterMemory: between((m) => [m.memory, m.req]),
    spanMs: first === undefined || last === undefined ? 0 : last - first,
    intervals: Math.max(0, run.requests.length - 1),
  };
}

/** What a guest's `xl remus` runs of one row gave so far. */
export interface RemusSamples {
  rounds: RemusRound[];
  errors: string[];
  dropped: number;
}

export const noRemusSamples = (): RemusSamples => ({ rounds: [], errors: [], dropped: 0 });

/**
 * One `xl remus -b -i intervalMs` run on the guest for `seconds`, added to `into`. A guest libxl
 * leaves suspended when it is stopped is resumed with `fastsuspend resume` (said in the row's
 * errors: a user would have to).
 */
export async function xlRemusRun(l: Lab, kernel: ToolstackKernel, intervalMs: number, seconds: number, into: RemusSamples): Promise<void> {
  await blackout(l, kernel.name); // clears the probe's table: the run sees its own gaps only
  const runs = await xlTimed(l, 1, seconds, ["remus", "-F", "-b", "-n", "-d", "-i", String(intervalMs), kernel.name, "dummy"], (seconds + 120) * 1000);
  const run = runs[0] as XlRun;
  // Stopped in the middle of a checkpoint, xl leaves the guest suspended (libxl's; docs/results.md):
  // resumed first, as a user would have to, so that its probe can answer.
  const state = await xlState(l, kernel.name);
  if (state.includes("s")) {
    const res = await l.exec(["node", "/fastsuspend/packages/cli/dist/main.js", "resume", kernel.name, "--no-daemon"]);
    into.errors.push(`xl remus left the guest suspended (${state}); fastsuspend resume: exit ${res.code}`);
  } else if (!runningState(state)) into.errors.push(`guest state after xl remus: ${state || "gone"}`);
  const report = await blackout(l, kernel.name);
  into.rounds.push({ run, gaps: report.gaps, leftSuspended: state.includes("s") });
  into.dropped += report.dropped;
}

/** The row of a guest's `xl remus -b -i intervalMs` runs, said in the log. */
export function remusRow(kernel: ToolstackKernel, guestType: GuestType, intervalMs: number, s: RemusSamples, o: ToolstackOptions): ToolstackResult {
  const row = summarizeRemusRounds(`xl remus -b -i ${intervalMs}`, kernel.desc, o.hypervisor, guestType, s.rounds);
  row.errors = counted([...row.errors, ...s.errors, ...droppedGaps(s.dropped)]);
  const secs = s.rounds.reduce((t, r) => t + (r.run.stoppedAtMs ?? r.run.ms), 0) / 1000;
  o.log(`${row.tool} on ${kernel.desc} ${guestType} for ${secs.toFixed(0)} s in ${s.rounds.length} run(s): ${row.n} checkpoints (${(row.perSecond ?? 0).toFixed(1)}/s), blackout median ${row.blackoutMs.median.toFixed(1)} ms (p99 ${row.blackoutMs.p99.toFixed(1)}), request -> suspended median ${row.phases.suspendMs.median.toFixed(1)} ms${row.errors.length > 0 ? `; ${row.errors.join("; ")}` : ""}`);
  for (const [i, r] of s.rounds.entries()) o.log(`  run ${i + 1}: ${remusRunEdges(r)}`);
  return row;
}

/**
 * Where a run's longest blackouts fell, for the log: the first checkpoint's (after the full copy
 * of memory), the longest counted one and its place, the gaps the stop ended (left out).
 */
export function remusRunEdges(r: RemusRound): string {
  const cps = checkpointGaps(r.run, r.gaps, { leftSuspended: r.leftSuspended });
  const ms = (g: BlackoutGap | undefined): string => (g === undefined ? "none" : `${g.bootMs.toFixed(1)} ms`);
  let longest: number | undefined;
  for (const [i, c] of cps.entries()) {
    if (c.gap === undefined || c.cutByStop) continue;
    if (longest === undefined || c.gap.bootMs > (cps[longest]?.gap?.bootMs ?? 0)) longest = i;
  }
  const cut = cps.filter((c) => c.cutByStop).map((c) => ms(c.gap));
  return `${cps.length} checkpoints; first ${ms(cps[0]?.gap)}; longest ${longest === undefined ? "none" : `${ms(cps[longest]?.gap)} (#${longest + 1})`}` +
    (cut.length > 0 ? `; left out, ended by the stop: ${cut.join(", ")}` : "");
}

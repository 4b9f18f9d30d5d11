// What users run, measured by the guest (issue 14): `xl save -c` on a guest with the stock kernel
// and on one with the patched kernel, side by side in one lab. dom0 times each xl run and marks
// when libxl issued the suspend request and saw the guest suspended (xl-timed.ts); the guest's blackout probe reports
// how long its user space could not run, matched to each run by wall clock; the guest's phases
// probe (patched kernel only) its own suspend and resume.
import { summarize } from "@fastsuspend/coordinator";
import type { ToolstackResult } from "@fastsuspend/cli";
import { blackout, guestSuspends, type BlackoutGap, type GuestSuspend, type GuestType, type Lab } from "@fastsuspend/lab";
import { summarizeGuestPhases } from "./guest-phases";
import { firstMark, xlRunError, xlRunOk, xlTimed, type XlRun } from "./xl-timed";

/** What the guest's probe saw of one xl run. */
export interface RunGaps {
  /** The gap over libxl's "guest has suspended" mark: the guest's downtime; undefined when none spans it. */
  blackout?: number;
  /** The run's other gaps, summed: user space starved while xl ran but the guest was not suspended. */
  stalls: number;
}

/**
 * Each run's blackout: the probe's longest gap that spans libxl's first "guest has suspended" mark
 * (± slackMs: the two clocks differ a little, and xl prints the line after the fact); the run's
 * other gaps (begun inside the run, ± slack) are its stalls. Not one sum: `xl migrate` lets the
 * guest run through its pre-copy rounds, and in this TCG lab user space is starved then (log-dirty
 * faults, dom0 copying on the same cores): session 15's migrate rows summed those gaps into a
 * "downtime" of 14.3 s when libxl took 1.7 s from "suspended" to its exit.
 */
export function gapsPerRun(runs: readonly XlRun[], gaps: readonly BlackoutGap[], slackMs = 100): RunGaps[] {
  return runs.map((r) => {
    const inRun = gaps.filter((g) => g.atRealMs >= r.startRealMs - slackMs && g.atRealMs <= r.endRealMs + slackMs);
    const susp = suspendedMark(r);
    const at = susp === undefined ? undefined : r.startRealMs + susp;
    const over = at === undefined ? [] : gaps.filter((g) => g.atRealMs <= at + slackMs && g.atRealMs + g.bootMs >= at - slackMs);
    const down = over.reduce<BlackoutGap | undefined>((a, g) => (a === undefined || g.bootMs > a.bootMs ? g : a), undefined);
    const stalls = inRun.filter((g) => g !== down).reduce((sum, g) => sum + g.bootMs, 0);
    return down === undefined ? { stalls } : { blackout: down.bootMs, stalls };
  });
}

/** libxl's first "guest has suspended" of a run, after its first request (save -c and migrate have one each). */
const suspendedMark = (r: XlRun): number | undefined => r.suspended.find((t) => t >= (r.requests[0] ?? 0));

/** The save helper's end of memory after the suspended mark (the last round of a migration). */
const memoryMark = (r: XlRun): number | undefined => firstMark(r.memoryDone, suspendedMark(r));

/** `gaps[i]` is what the probe saw of run i, undefined when it could not say (left out). */
export function summarizeXlRuns(tool: string, guestKernel: string, hypervisor: string, runs: readonly XlRun[], gaps: readonly (RunGaps | undefined)[]): ToolstackResult {
  const ok = runs.filter(xlRunOk);
  const request = (r: XlRun): number | undefined => r.requests[0];
  const phase = (from: (r: XlRun) => number | undefined, to: (r: XlRun) => number | undefined): number[] =>
    ok.flatMap((r) => {
      const a = from(r);
      const b = to(r);
      return a === undefined || b === undefined ? [] : [b - a];
    });
  const seen = runs.flatMap((r, i) => {
    const g = gaps[i];
    return xlRunOk(r) && g !== undefined ? [g] : [];
  });
  return {
    tool, guestKernel, hypervisor, n: runs.length, ok: ok.length, failed: runs.length - ok.length,
    blackoutMs: summarize(seen.flatMap((g) => (g.blackout === undefined ? [] : [g.blackout]))),
    stallsMs: summarize(seen.map((g) => g.stalls)),
    totalMs: summarize(ok.map((r) => r.ms)),
    phases: {
      setupMs: summarize(phase(() => 0, request)), suspendMs: summarize(phase(request, suspendedMark)), saveAndResumeMs: summarize(phase(suspendedMark, (r) => r.ms)),
      memoryMs: summarize(phase(suspendedMark, memoryMark)), afterMemoryMs: summarize(phase(memoryMark, (r) => r.ms)),
    },
    errors: runs.flatMap((r) => xlRunError(r) ?? []).slice(0, 3),
  };
}

export interface ToolstackOptions {
  runs: number;
  hypervisor: string;
  log: (line: string) => void;
}

export interface ToolstackKernel {
  path: string;
  desc: string;
  /** The guest's name (its domid changes with every migration). */
  name: string;
  /** Boot arguments beyond the probe's: the fast mode is xen_manage.fast_suspend=1 (kernel patch 0006). */
  extra?: string;
  /** The PVH section also runs our own paths on this guest. */
  ourPaths?: boolean;
}

/**
 * The toolstack guests' probe records gaps over 8 ms past its 1 ms sleep: above the lab's noise
 * (the PVH lab's floor has a p99 of 3-4 ms and a tail to 40 ms; with the probe's default 3 ms its
 * 4096-entry table filled within a minute and later gaps were dropped: session 10's migrate row
 * saw none), below any blackout these rows measure (a fast guest's remus checkpoint, ~40 ms).
 */
const TOOLSTACK_PROBE = "fastsuspend.blackout=on fastsuspend.blackout_args=--threshold-us,8000";

/** The guest's state as `xl list` prints it ("r-----", "---ss-"), "" when it is gone. */
export async function xlState(l: Lab, name: string): Promise<string> {
  return (await l.exec(`xl list ${name} 2>/dev/null | awk 'NR==2{print $5}'`)).stdout.trim();
}

/** Running or blocked, nothing else: neither paused, suspended, crashed nor dying. */
export const runningState = (state: string): boolean => /^[r-][b-]-{4}$/.test(state);

/** Paused and nothing worse: a guest waiting its turn, neither suspended, crashed nor dying. */
export const pausedState = (state: string): boolean => /^[r-][b-]p-{3}$/.test(state);

/** A row's errors, each said once, with how many times when more than once. */
export function counted(errors: readonly string[]): string[] {
  const n = new Map<string, number>();
  for (const e of errors) n.set(e, (n.get(e) ?? 0) + 1);
  return [...n].map(([e, k]) => (k > 1 ? `${e} (x${k})` : e));
}

/** What a report's dropped gaps mean for a row, or nothing when none were dropped. */
export function droppedGaps(dropped: number): string[] {
  return dropped > 0 ? [`the guest's probe dropped ${dropped} gaps (its table was full): blackout figures incomplete`] : [];
}

/** A guest for the toolstack rows: booted with the blackout probe on, past the probe's noise floor. */
export async function toolstackGuest(l: Lab, kernel: ToolstackKernel, type: GuestType, log: (line: string) => void): Promise<number> {
  const g = await l.createGuest({ name: kernel.name, kernel: kernel.path, type, extra: `${TOOLSTACK_PROBE}${kernel.extra === undefined ? "" : ` ${kernel.extra}`}` });
  // The probe's first seconds are its noise floor (no suspends then); then a clean window.
  await new Promise((r) => setTimeout(r, 11_000));
  const floor = await blackout(l, kernel.name);
  await guestSuspends(l, kernel.name).catch(() => []);
  log(`${kernel.desc} ${type} guest "${kernel.name}" is domain ${g.domid}; blackout probe floor p99 ${floor.floor.p99Us} us, max ${floor.floor.maxUs} us`);
  return g.domid;
}

/** What a guest's runs of one repeated xl row gave so far. */
export interface RepeatedSamples {
  runs: XlRun[];
  /** `seen[i]`: what the probe saw of runs[i], undefined when it could not say. */
  seen: (RunGaps | undefined)[];
  dropped: number;
  /** What went wrong beside the runs themselves: a probe that did not answer, a turn lost. */
  errors: string[];
  /** The guest's own suspends (its phases probe), drained after each batch of runs. */
  suspends: GuestSuspend[];
}

export const noRepeatedSamples = (): RepeatedSamples => ({ runs: [], seen: [], dropped: 0, errors: [], suspends: [] });

/**
 * `xl -vvv ARGS` x runs on the guest (ARGS name it, by name: a migration changes its domid), each
 * run's blackout from the guest's probe, added to `into`. False when the guest is no longer running.
 */
export async function xlRepeatedRuns(l: Lab, kernel: ToolstackKernel, xlArgs: string[], runs: number, into: RepeatedSamples): Promise<boolean> {
  // The guest's own suspends of this batch only: those of other rows' runs (xl remus's hundreds)
  // are drained first, not counted here.
  await guestSuspends(l, kernel.name).catch(() => []);
  // The probe is asked after each run (which clears its table): each run's gaps, however many runs.
  for (let i = 0; i < runs; i++) {
    const run = (await xlTimed(l, 1, 0, xlArgs, 120_000))[0] as XlRun;
    into.runs.push(run);
    const at = into.runs.length - 1;
    // A probe that does not answer (a guest a failed migration left behind, a console timeout)
    // costs this run's blackout, not the runs measured before it; a guest no longer running ends
    // the row.
    const report = await blackout(l, kernel.name).catch((err: unknown) => {
      into.errors.push(`run ${at + 1}: the guest's probe did not answer: ${err instanceof Error ? err.message : String(err)}`);
      return undefined;
    });
    if (report === undefined) {
      if (!runningState(await xlState(l, kernel.name))) return false;
      continue;
    }
    into.dropped += report.dropped;
    into.seen[at] = gapsPerRun([run], report.gaps)[0];
  }
  into.suspends.push(...(await guestSuspends(l, kernel.name).catch(() => [])));
  return true;
}

/** The row of a guest's repeated xl runs, said in the log. */
export function repeatedRow(kernel: ToolstackKernel, tool: string, s: RepeatedSamples, o: ToolstackOptions & { guestType?: GuestType }): ToolstackResult {
  const summary = summarizeXlRuns(tool, kernel.desc, o.hypervisor, s.runs, s.seen);
  const row: ToolstackResult = { ...summary, errors: [...summary.errors, ...s.errors, ...droppedGaps(s.dropped)], ...(o.guestType === undefined ? {} : { guestType: o.guestType }) };
  o.log(`${tool} on ${kernel.desc}${o.guestType === undefined ? "" : ` ${o.guestType}`}: ${row.ok}/${row.n} ok, total median ${row.totalMs.median.toFixed(0)} ms, guest blackout median ${row.blackoutMs.median.toFixed(1)} ms, stalls median ${(row.stallsMs?.median ?? 0).toFixed(1)} ms`);
  const guestMs = summarizeGuestPhases(s.suspends);
  return guestMs === undefined ? row : { ...row, guestMs };
}

/** `xl -vvv ARGS` x o.runs on the guest, in one batch: one row of the toolstack table. */
export async function xlRepeatedRow(l: Lab, kernel: ToolstackKernel, tool: string, xlArgs: string[], o: ToolstackOptions & { guestType?: GuestType }): Promise<ToolstackResult> {
  const s = noRepeatedSamples();
  await xlRepeatedRuns(l, kernel, xlArgs, o.runs, s);
  return repeatedRow(kernel, tool, s, o);
}

/**
 * `xl save -c` x N on a fresh PV guest with `kernel` (booted with the blackout probe on): the row
 * for the toolstack table. The guest is destroyed afterwards.
 */
export async function xlSaveRow(l: Lab, kernel: ToolstackKernel, o: ToolstackOptions): Promise<ToolstackResult> {
  await toolstackGuest(l, kernel, "pv", o.log);
  try {
    return await xlRepeatedRow(l, kernel, "xl save -c", ["save", "-c", kernel.name, "/dev/null"], o);
  } finally {
    await l.destroyGuest(kernel.name).catch(() => undefined);
  }
}

// One function per command. Data flows one way: CLI -> coordinator -> bindings.
import {
  CheckpointRunner,
  choosePath,
  detect,
  installSignalGuard,
  resumeSuspended,
  SuspendSession,
  summarize,
  type Capabilities,
  type CheckpointStats,
  type SessionOptions,
  type Summary,
} from "@fastsuspend/coordinator";

import type { CliArgs } from "./args";
import type { CheckpointStop } from "./bench-result";
import type { Deps, XenEnv } from "./context";
import { EXIT } from "./exit-codes";
import { progressFor } from "./progress";

const ms = (x: number): string => `${x.toFixed(2)} ms`;

/**
 * Signals after which the guest is put back to running before the CLI exits. SIGHUP too: an ssh
 * session that drops mid-cycle hangs the CLI up, and Node's default for SIGHUP is to die at once,
 * leaving the guest suspended with nobody to resume it (the CLI keeps no journal).
 */
export const GUARDED_SIGNALS: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];
const line = (s: Summary): string => `median ${ms(s.median)}, avg ${ms(s.avg)}, p99 ${ms(s.p99)}`;

export function sessionOptions(a: CliArgs): SessionOptions {
  return {
    ...(a.path === undefined ? {} : { path: a.path }),
    ...(a.timeoutMs === undefined ? {} : { defaultTimeoutMs: a.timeoutMs }),
    ...(a.xsResume === undefined ? {} : { xsResume: a.xsResume }),
    fallback: a.fallback,
  };
}

async function withSession<T>(env: XenEnv, a: CliArgs, deps: Deps, body: (s: SuspendSession) => Promise<T>): Promise<T> {
  const s = new SuspendSession(env.xen, env.xs, a.domid, sessionOptions(a));
  // Installed before open(): a signal at any point leaves the guest running.
  const unguard = installSignalGuard(s, {
    signals: GUARDED_SIGNALS,
    ...(deps.signals === undefined ? {} : { source: deps.signals }),
    ...(deps.exit === undefined ? {} : { exit: deps.exit }),
    onClosed: (sig, r) => {
      deps.stderr(`fastsuspend: ${sig}: domain ${a.domid} left running${r.resumed ? " (resumed)" : ""}${r.problems.length > 0 ? `; ${r.problems.join("; ")}` : ""}\n`);
    },
  });
  try {
    await s.open();
    return await body(s);
  } finally {
    await s.close({ resumeIfSuspended: false });
    unguard();
  }
}

export async function cmdInfo(env: XenEnv, a: CliArgs, deps: Deps): Promise<number> {
  const caps = await detect(env.xen, env.xs, a.domid);
  let chosen: string;
  try {
    chosen = choosePath(caps, a.path);
  } catch (err) {
    if (!caps.exists || caps.isDom0 || caps.dying) throw err;
    chosen = `none (${err instanceof Error ? err.message : String(err)})`;
  }
  printInfo(caps, chosen, a, deps);
  return EXIT.ok;
}

/** info's output (also used when fastsuspendd answers). */
export function printInfo(caps: Capabilities, chosen: string, a: CliArgs, deps: Deps): void {
  if (a.json) {
    deps.stdout(`${JSON.stringify({ ...caps, chosen }, null, 2)}\n`);
    return;
  }
  deps.stdout(`${infoLines(caps, chosen).join("\n")}\n`);
}

/** info's text lines (status DOM shows them too). */
export function infoLines(caps: Capabilities, chosen: string): string[] {
  const ch = caps.guestChannel;
  return [
    `domain ${caps.domid}: ${caps.hvm ? "HVM" : "PV"}, ${caps.shutdown !== null ? `shut down (${caps.shutdown})` : caps.paused ? "paused" : "running"}`,
    `guest suspend channel: ${ch.status}${ch.port !== undefined ? ` (port ${ch.port})` : ""}${ch.detail !== undefined ? `: ${ch.detail}` : ""}`,
    `control/feature-suspend: ${caps.featureSuspend ? "yes" : "no"}`,
    // HVM/PVH only: a PV guest always takes control/shutdown.
    ...(caps.hvm ? [`PV drivers up: ${caps.pvControl ? "yes" : "no: asked through xc_domain_shutdown"}${caps.pvControlDetail ? ` (${caps.pvControlDetail})` : ""}`] : []),
    `hypervisor suspend_notify: ${caps.hvNotify.available ? "yes" : "no"} (${caps.hvNotify.detail})`,
    `paths (fastest first): ${caps.paths.join(", ") || "none"}`,
    `would use: ${chosen}`,
  ];
}

export async function cmdSuspend(env: XenEnv, a: CliArgs, deps: Deps): Promise<number> {
  return withSession(env, a, deps, async (s) => {
    const r = await s.suspend(a.timeoutMs === undefined ? {} : { timeoutMs: a.timeoutMs });
    // Leave it suspended: that is what was asked. close() is told not to resume.
    if (a.json) deps.stdout(`${JSON.stringify({ domid: a.domid, ...r })}\n`);
    else deps.stdout(`domain ${a.domid} suspended via ${r.path} in ${ms(r.suspendMs)}\n`);
    return EXIT.ok;
  });
}

export async function cmdResume(env: XenEnv, a: CliArgs, deps: Deps): Promise<number> {
  const r = await resumeSuspended(env.xen, env.xs, a.domid, { fast: !a.full, xsResume: a.xsResume !== "skip" });
  if (a.json) deps.stdout(`${JSON.stringify({ domid: a.domid, full: a.full, ...r })}\n`);
  else deps.stdout(`domain ${a.domid} resumed (${a.full ? "full" : "cooperative"}) in ${ms(r.resumeMs + r.xsResumeMs)}\n`);
  return EXIT.ok;
}

/** The median of each block of `size` values (the last block may be shorter), rounded to 0.1. */
export function mediansPerBlock(values: number[], size: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < values.length; i += size) {
    out.push(Math.round(summarize(values.slice(i, i + size)).median * 10) / 10);
  }
  return out;
}

/**
 * The abort reason of a loop whose --for budget elapsed. The signal guard aborts without a reason,
 * and the loop itself reports both as "signal": the reason is what tells them apart.
 */
const BUDGET_ELAPSED = "the --for budget elapsed";

/** Aborts `stop` once `seconds` have passed (never without a budget); returns what clears the timer. */
function startBudget(stop: AbortController, seconds: number | undefined): () => void {
  if (seconds === undefined) return () => undefined;
  const timer = setTimeout(() => { stop.abort(BUDGET_ELAPSED); }, seconds * 1000);
  return () => { clearTimeout(timer); };
}

/** The runner's reason in the CLI's words: a domain that went away failed its cycle. */
function stoppedBy(stats: CheckpointStats, stop: AbortSignal): CheckpointStop {
  if (stats.stoppedBy === "gone") return "error";
  return stats.stoppedBy === "signal" && stop.reason === BUDGET_ELAPSED ? "time" : stats.stoppedBy;
}

/** xsResume: the mode in effect ("auto" resolved), so that a result says what its cycles did. */
function printCheckpointStats(stats: CheckpointStats, by: CheckpointStop, path: string, xsResume: string, a: CliArgs, deps: Deps): void {
  const totals = stats.samples.map((t) => t.totalMs);
  if (a.json) {
    const { requested, ok, failed, errors, suspendMs, resumeMs, totalMs, elapsedMs, cyclesPerSecond } = stats;
    deps.stdout(`${JSON.stringify({
      domid: a.domid, path, xsResume, requested, ok, failed, stoppedBy: by, errors, suspendMs, resumeMs, totalMs, elapsedMs, cyclesPerSecond,
      ...(a.forSeconds === undefined ? {} : { budgetSeconds: a.forSeconds }),
      totalMsPerHundred: mediansPerBlock(totals, 100), totalMsPerThousand: mediansPerBlock(totals, 1000),
    })}\n`);
    return;
  }
  const budget = by === "time" ? `; stopped by its ${String(a.forSeconds)} s budget` : "";
  deps.stdout(`domain ${a.domid}: ${stats.ok}/${String(stats.requested)} checkpoints via ${path} (XS_RESUME ${xsResume}) in ${(stats.elapsedMs / 1000).toFixed(1)} s (${stats.cyclesPerSecond.toFixed(1)}/s); cycle ${line(stats.totalMs)}${budget}\n`);
  for (const e of stats.errors) deps.stderr(`fastsuspend: ${e}\n`);
}

export async function cmdCheckpoint(env: XenEnv, a: CliArgs, deps: Deps): Promise<number> {
  const stop = new AbortController();
  const s = new SuspendSession(env.xen, env.xs, a.domid, sessionOptions(a));
  const unguard = installSignalGuard(s, {
    signals: GUARDED_SIGNALS,
    ...(deps.signals === undefined ? {} : { source: deps.signals }),
    ...(deps.exit === undefined ? {} : { exit: deps.exit }),
    onSignal: () => { stop.abort(); },
    onClosed: (sig, r) => {
      deps.stderr(`fastsuspend: ${sig}: checkpoint loop stopped, domain ${a.domid} left running${r.resumed ? " (resumed)" : ""}\n`);
    },
  });
  let clearBudget = (): void => undefined;
  let stopProgress = (): void => undefined;
  try {
    await s.open();
    // From here, not from the start: the budget is for cycles, not for opening the session.
    clearBudget = startBudget(stop, a.forSeconds);
    // Scripts (and the lab test) wait for this line before they signal the loop.
    deps.stderr(`fastsuspend: checkpoint loop on domain ${a.domid} via ${String(s.path)} started\n`);
    // The session holds the domain's lock for the whole command: no cycle is skipped, and the
    // first failure ends the loop (the default failure budget).
    const runner = new CheckpointRunner({
      intervalMs: a.intervalMs ?? 0,
      count: a.count ?? 1,
      signal: stop.signal,
      cycle: () => s.cycle(a.timeoutMs === undefined ? {} : { timeoutMs: a.timeoutMs }),
    });
    stopProgress = progressFor(a, deps, { label: `checkpoint on domain ${a.domid}`, ...(a.count === undefined ? {} : { total: a.count }), read: () => runner.counts });
    const stats = await runner.run();
    printCheckpointStats(stats, stoppedBy(stats, stop.signal), String(s.path), s.xsResumeMode, a, deps);
    // A loop its budget stopped is a success: only failed cycles fail it.
    return stats.failed > 0 ? EXIT.failed : EXIT.ok;
  } finally {
    stopProgress();
    clearBudget();
    await s.close();
    unguard();
  }
}

export { summarize };

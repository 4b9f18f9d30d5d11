// suspend, resume, checkpoint, info, status and metrics through fastsuspendd when it runs and
// answers; the caller falls back to working directly otherwise (or with --no-daemon).
import { isDaemonError, type CheckpointProgress, type DaemonClient } from "@fastsuspend/daemon/client";

import type { CliArgs } from "./args";
import { GUARDED_SIGNALS, printInfo } from "./commands";
import type { Deps } from "./context";
import { errorLine, EXIT, exitCodeFor } from "./exit-codes";
import { cmdMetrics } from "./metrics";
import { PROGRESS_EVERY_MS, progressFor, type LoopCounts } from "./progress";
import { formatStatus } from "./status-format";

const ms = (x: number): string => `${x.toFixed(2)} ms`;

const SIGNAL_NUMBERS: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 };

/** Whether this invocation can be served by the daemon (flags it cannot honour mean direct). */
export function daemonCanServe(a: CliArgs): boolean {
  if (a.noDaemon === true) return false;
  switch (a.command) {
    case "suspend":
      return !a.fallback && a.xsResume === undefined;
    case "checkpoint":
      // The daemon's loops have no time budget (--for): run it here.
      return !a.fallback && a.xsResume === undefined && a.forSeconds === undefined;
    case "resume":
      return !a.full && a.xsResume === undefined;
    case "info":
    case "status":
    case "metrics":
      return true;
    default:
      return false;
  }
}

export async function viaDaemon(c: DaemonClient, a: CliArgs, deps: Deps): Promise<number> {
  const out = (o: unknown): void => {
    deps.stdout(`${JSON.stringify(o)}\n`);
  };
  try {
    switch (a.command) {
      case "suspend": {
        const r = await c.request("suspend", {
          domid: a.domid,
          ...(a.path === undefined ? {} : { path: a.path }),
          ...(a.timeoutMs === undefined ? {} : { timeoutMs: a.timeoutMs }),
        });
        if (a.json) out(r);
        else deps.stdout(`domain ${a.domid} suspended via ${r.path} in ${ms(r.suspendMs)} (fastsuspendd)\n`);
        return EXIT.ok;
      }
      case "resume": {
        const r = await c.request("resume", { domid: a.domid });
        if (a.json) out({ ...r, full: false });
        else deps.stdout(`domain ${a.domid} resumed (cooperative) in ${ms(r.resumeMs + r.xsResumeMs)} (fastsuspendd)\n`);
        return EXIT.ok;
      }
      case "info": {
        const st = await c.request("status", { domid: a.domid });
        printInfo(st.capabilities, st.chosen, a, deps);
        return EXIT.ok;
      }
      case "status": {
        const st = a.domid >= 0 ? await c.request("status", { domid: a.domid }) : await c.request("status");
        deps.stdout(`${a.json ? JSON.stringify(st) : formatStatus(st)}\n`);
        return EXIT.ok;
      }
      case "checkpoint":
        return await checkpoint(c, a, deps);
      case "metrics":
        return await cmdMetrics(c, a, deps);
      default:
        return EXIT.usage;
    }
  } catch (err) {
    deps.stderr(`${errorLine(err)}\n`);
    return exitCodeFor(err);
  }
}

/** How often the daemon sends the loop's counts: often enough for the progress line, at most once a second. */
function progressPeriodMs(deps: Deps): number {
  return Math.min(deps.progressEveryMs ?? PROGRESS_EVERY_MS, 1000);
}

/**
 * A loop on the daemon, on one `checkpoint` request: its progress frames feed the progress line,
 * and its answer comes when the loop ends (count reached, `checkpoint.stop` from here or elsewhere,
 * too many failures, the domain gone).
 */
async function checkpoint(c: DaemonClient, a: CliArgs, deps: Deps): Promise<number> {
  // Ctrl-C, SIGTERM or a hangup (ssh dropped) stops the daemon's loop (the guest is left running
  // by the daemon); exit 128 + the signal's number, as the direct path does. A signal before the
  // loop is set up stops it as soon as it is.
  const interrupted: { by: NodeJS.Signals | undefined } = { by: undefined };
  let started = false;
  const stopLoop = (): void => {
    void c.request("checkpoint.stop", { domid: a.domid }).catch(() => undefined);
  };
  const onSignal = (sig: NodeJS.Signals): void => {
    interrupted.by ??= sig;
    if (started) stopLoop();
  };
  const src = deps.signals ?? process;
  for (const sig of GUARDED_SIGNALS) src.on(sig, onSignal);
  let counts: LoopCounts = { done: 0, ok: 0, failed: 0, skipped: 0 };
  const onProgress = (p: CheckpointProgress): void => {
    counts = { done: p.done, ok: p.ok, failed: p.failed, skipped: p.skipped };
    if (started) return;
    started = true;
    // Scripts (and the lab test) wait for this line before they signal the loop, as on the direct path.
    deps.stderr(`fastsuspend: checkpoint loop on domain ${a.domid} via ${String(p.path)} started (fastsuspendd)\n`);
    if (interrupted.by !== undefined) stopLoop();
  };
  const stopProgress = progressFor(a, deps, { label: `checkpoint on domain ${a.domid} (fastsuspendd)`, ...(a.count === undefined ? {} : { total: a.count }), read: () => counts });
  try {
    const { loop } = await c.checkpoint({
      domid: a.domid,
      intervalMs: a.intervalMs ?? 0,
      count: a.count ?? 1,
      progressMs: progressPeriodMs(deps),
      ...(a.path === undefined ? {} : { path: a.path }),
      ...(a.timeoutMs === undefined ? {} : { timeoutMs: a.timeoutMs }),
    }, onProgress);
    if (a.json) {
      deps.stdout(`${JSON.stringify({ domid: a.domid, ...loop })}\n`);
    } else {
      const s = loop.cycleMs;
      deps.stdout(
        `domain ${a.domid}: ${loop.ok}/${loop.count ?? loop.done} checkpoints via ${String(loop.path)} (fastsuspendd${loop.skipped > 0 ? `, ${loop.skipped} skipped while another tool had the domain` : ""}); ` +
          `cycle median ${ms(s.median)}, avg ${ms(s.avg)}, p99 ${ms(s.p99)} (last ${s.n})\n`,
      );
      if (loop.lastError !== null) deps.stderr(`fastsuspend: ${loop.lastError}\n`);
    }
    if (interrupted.by !== undefined) return 128 + (SIGNAL_NUMBERS[interrupted.by] ?? 2);
    return loop.failed > 0 || loop.stoppedBy === "error" ? EXIT.failed : EXIT.ok;
  } catch (err) {
    if (isDaemonError(err, "EUNKNOWNOP")) throw new Error(`fastsuspendd is older than this CLI (no \`checkpoint\` op): restart it, or use --no-daemon (${err.message})`, { cause: err });
    throw err;
  } finally {
    stopProgress();
    for (const sig of GUARDED_SIGNALS) src.off(sig, onSignal);
  }
}

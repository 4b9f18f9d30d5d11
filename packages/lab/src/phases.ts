// The guest's own account of each Xen suspend (assets/guest-phases.c, on the suspend_resume
// tracepoint of the PM core and of kernel patch 0005), read from dom0 through guest-probe.ts.
// Asking empties the guest's trace buffer, so each call reports the suspends since the previous.
import { LabError } from "./errors";
import { askGuestProbe, probeFields as fields } from "./guest-probe";
import type { Lab } from "./lab";

/**
 * One suspend as the guest saw it; times in ms, on the guest's CLOCK_MONOTONIC, which stands still
 * while the domain is suspended (dom0 measures that part).
 */
export interface GuestSuspend {
  /** How the request came: 1 the suspend event channel, 0 control/shutdown, -1 not traced. */
  source: number;
  /** The hypercall's result: 1 cancelled (the guest went on in the same domain). */
  cancelled: boolean;
  /** do_suspend() ran the restore path (not cancelled). */
  restored: boolean;
  /** Tasks were frozen (a fast suspend, kernel patch 0006's xen_manage.fast_suspend, skips it). */
  frozen: boolean;
  /**
   * Devices went through the PM core's passes (dpm_suspend traced). A fast suspend of a PV or PVH
   * guest (kernel patch 0007) skips them when cancelled, and runs them after a restore.
   */
  devicePasses: boolean;
  /** Request seen → do_suspend() starts (the work item / xenwatch latency); undefined if no request was traced. */
  requestMs?: number;
  /** Request seen (or do_suspend()'s start) → suspend hypercall (to timekeeping_suspend, exactly). */
  suspendMs: number;
  /** Hypercall returns (timekeeping_resume, exactly) → do_suspend() ends, tasks thawed. */
  resumeMs: number;
  totalMs: number;
  /** Each traced step's time (freeze_processes, dpm_suspend, xs_resume, thaw_processes, ...). */
  steps: Record<string, number>;
  /**
   * The guest's clock stepped back inside this suspend (a negative span or step: the nested lab's
   * xen clocksource does it now and then); its times are then not to be used.
   */
  clockSteppedBack: boolean;
}

const FIXED = new Set(["src", "cancelled", "restored", "request_us", "suspend_us", "resume_us", "total_us"]);

function int(m: Map<string, string>, k: string, line: string): number {
  const s = m.get(k);
  if (s === undefined || !/^-?\d+$/.test(s)) throw new LabError(`phases probe: no integer ${k} in ${JSON.stringify(line)}`, "the console log may be garbled; ask again");
  return Number(s);
}

/** One PHASES-CYC line. A span the kernel did not trace ("na": a kernel without 0005) throws. */
export function parsePhasesLine(line: string): GuestSuspend {
  const m = fields(line);
  const us = (k: string): number => {
    if (m.get(k) === "na") throw new LabError(`phases probe: ${k} not traced in ${JSON.stringify(line)}`, "is the guest kernel built with patch 0005 (xen_suspend_hypercall)?");
    return int(m, k, line) / 1000;
  };
  const steps: Record<string, number> = {};
  for (const [k, v] of m) {
    if (FIXED.has(k)) continue;
    if (!/^[a-z_]{1,31}$/.test(k) || !/^-?\d+$/.test(v)) throw new LabError(`phases probe: bad step ${k}=${v}`, "the console log may be garbled; ask again");
    steps[k] = Number(v) / 1000;
  }
  const times = { suspendMs: us("suspend_us"), resumeMs: us("resume_us"), totalMs: us("total_us") };
  const request = m.get("request_us") === "na" ? undefined : int(m, "request_us", line) / 1000;
  return {
    source: int(m, "src", line), cancelled: int(m, "cancelled", line) === 1, restored: int(m, "restored", line) === 1,
    frozen: "freeze_processes" in steps,
    devicePasses: "dpm_suspend" in steps,
    ...(request === undefined ? {} : { requestMs: request }),
    ...times, steps,
    clockSteppedBack: [request ?? 0, ...Object.values(times), ...Object.values(steps)].some((x) => x < 0),
  };
}

/** A kernel message on the console: "[ seconds.micros] ...", printed whole by printk. */
const KERNEL_MESSAGE = /\[\s*\d+\.\d+\] /;

/**
 * A probe line the kernel printed into: the tty hands the probe's line to the console in pieces,
 * and printk writes between them. Either the line's rest follows on the next line ("...
 * xs_resume=38[   20.05] msg", then "1 thaw_processes=700", seen in CI), or the probe's line had
 * ended where the kernel's message began (its last field glued to it, "thaw_processes=9491[
 * 2164.91] msg", the next line the probe's next: seen in CI too). Cut the kernel's message out;
 * join the next line when that makes a whole line; `take` marks the next line used.
 */
function unsplitLine(line: string, next: string | undefined, take: () => void): GuestSuspend {
  const k = KERNEL_MESSAGE.exec(line);
  if (k === null || k.index === 0) return parsePhasesLine(line);
  const head = line.slice(0, k.index);
  if (next !== undefined && !next.startsWith("PHASES-") && !KERNEL_MESSAGE.test(next.slice(0, 16))) {
    try {
      const joined = parsePhasesLine(head + next);
      take();
      return joined;
    } catch {
      // not its rest: the line ended with the kernel's message
    }
  }
  return parsePhasesLine(head);
}

/**
 * The suspends in the probe's block for `req` (the last block when `req` is not given);
 * undefined while that block is not complete. The count is checked against the END line.
 */
export function parsePhases(text: string, req?: string): GuestSuspend[] | undefined {
  const lines = text.replace(/\r/g, "").split("\n").map((l) => {
    const i = l.indexOf("PHASES-"); // a line may start with another writer's unterminated output
    return i >= 0 ? l.slice(i) : l;
  });
  let begin = -1;
  for (let i = lines.length - 1; i >= 0 && begin < 0; i--) {
    const l = lines[i] ?? "";
    if (l.startsWith("PHASES-BEGIN ") && (req === undefined || fields(l).get("req") === req)) begin = i;
  }
  if (begin < 0) return undefined;
  const head = fields(lines[begin] ?? "");
  const out: GuestSuspend[] = [];
  for (let i = begin + 1; i < lines.length; i++) {
    const l = lines[i] ?? "";
    if (l.startsWith("PHASES-CYC ")) out.push(unsplitLine(l, lines[i + 1], () => i++));
    else if (l.startsWith("PHASES-BEGIN ")) return undefined; // cut off by a new block
    else if (l.startsWith("PHASES-END ")) {
      const e = fields(l);
      if (e.get("req") !== head.get("req") || e.get("seq") !== head.get("seq")) continue;
      const count = Number(e.get("count"));
      if (count !== out.length) throw new LabError(`phases probe: block seq=${head.get("seq") ?? "?"} has ${out.length} lines for count=${count}`, "console output was lost or interleaved; ask again");
      return out;
    }
  }
  return undefined;
}

/**
 * The suspends `guest` (a domain name or id) went through since the previous call (or its boot),
 * in order, from its trace buffer.
 */
export async function guestSuspends(lab: Lab, guest: string | number, opts: { timeoutMs?: number } = {}): Promise<GuestSuspend[]> {
  return askGuestProbe(lab, guest, {
    node: "data/phases/request", tag: "PHASES", timeoutMs: opts.timeoutMs ?? 60_000,
    hint: "is the guest running an initramfs with /bin/phases (lab artefacts rebuilt), a kernel with event tracing, and not booted with fastsuspend.phases=off?",
    parse: parsePhases,
  });
}

/** A run's suspends, each figure summarised by the summary the caller passes. */
export interface GuestSuspendSummaries<S> {
  /** Suspends summarised. */
  n: number;
  /** Suspends left out because the guest's clock stepped back inside them. */
  clockSteppedBack?: number;
  suspend: S;
  resume: S;
  /** Only when some suspend traced its request. */
  request?: S;
  /** Each traced step, over the suspends that took it (an error path may skip one). */
  steps: Record<string, S>;
}

/**
 * Summarises the suspends a run traced, leaving out those whose clock stepped back (their times
 * are not usable); undefined when none was traced (a kernel without patch 0005, or the probe off).
 * The summary is the caller's, so that the bench and the lab tests use the project's one (the
 * coordinator's `summarize`, which this package cannot import: the coordinator's tests import it).
 */
export function summarizeGuestSuspends<S>(all: readonly GuestSuspend[], summarize: (samples: readonly number[]) => S): GuestSuspendSummaries<S> | undefined {
  if (all.length === 0) return undefined;
  const timed = all.filter((s) => !s.clockSteppedBack);
  const names = [...new Set(timed.flatMap((s) => Object.keys(s.steps)))];
  const steps: Record<string, S> = {};
  for (const k of names) steps[k] = summarize(timed.flatMap((s) => (s.steps[k] === undefined ? [] : [s.steps[k]])));
  const requests = timed.flatMap((s) => (s.requestMs === undefined ? [] : [s.requestMs]));
  return {
    n: timed.length,
    ...(timed.length < all.length ? { clockSteppedBack: all.length - timed.length } : {}),
    suspend: summarize(timed.map((s) => s.suspendMs)),
    resume: summarize(timed.map((s) => s.resumeMs)),
    ...(requests.length > 0 ? { request: summarize(requests) } : {}),
    steps,
  };
}

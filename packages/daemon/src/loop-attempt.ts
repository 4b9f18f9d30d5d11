// One attempt of a daemon checkpoint loop, beside libxl: the CheckpointRunner hooks that make a
// loop step aside whenever xl save, migrate or remus wants the domain. Before a cycle: skip it
// while another tool has the domain (its locks, its process, its request, a suspend of its own)
// or had it moments ago (a cool-down), else take libxl's locks. The cycle: warm session, journal
// entry around it. After it: keep libxl's userdata lock across the gap when it went well (an xl
// that starts then waits on it instead of racing us to the suspend lock), and hand the domain
// over at once when libxl queues on that lock, during the cycle or in the gap.
import {
  domainState,
  errorText,
  isDomainEnded,
  isSuspended,
  sleep,
  type CheckpointHooks,
  type CycleOutcome,
  type CycleTimings,
  type CycleVerdict,
} from "@fastsuspend/coordinator";
import { isXenError, type DomainInfo } from "@fastsuspend/xen";

import type { DaemonContext } from "./context";
import { failureReason } from "./daemon-metrics";
import { otherTool } from "./domain-checks";
import { pushSample, type DomainState, type Loop } from "./domains";
import type { Sessions } from "./sessions";

/** How often a loop's gap looks for libxl queued on the userdata lock it keeps. */
const HANDOVER_POLL_MS = 20;

/** What the attempts read and write of their loop (all of it but the runner they drive). */
export type LoopState = Omit<Loop, "runner">;

export class LoopAttempts {
  readonly #ctx: DaemonContext;
  readonly #sessions: Sessions;
  readonly #dom: DomainState;
  readonly #loop: LoopState;

  constructor(ctx: DaemonContext, sessions: Sessions, dom: DomainState, loop: LoopState) {
    this.#ctx = ctx;
    this.#sessions = sessions;
    this.#dom = dom;
    this.#loop = loop;
  }

  /** The runner's hooks: each attempt, its checks included, in the domain's queue and as time-critical work. */
  hooks(): CheckpointHooks {
    const d = this.#dom.domid;
    return {
      around: (attempt) => this.#ctx.queue.run(d, () => this.#ctx.gate.critical(attempt)),
      before: () => this.#before(),
      cycle: () => this.#cycle(),
      after: (o) => { this.#after(o); },
      gap: () => this.#gap(),
      onCycle: (o) => { this.#onCycle(o); },
    };
  }

  /**
   * The wait between two cycles, parked on libxl's userdata lock (DomainLocks). An xl that starts
   * now queues on that lock to read the domain's configuration; seen there, it gets the domain at
   * once, and the loop cools down until xl is done with it.
   */
  async #gap(): Promise<void> {
    const dom = this.#dom;
    const loop = this.#loop;
    const end = Date.now() + loop.intervalMs;
    for (;;) {
      // Looked at again in the queue: a request served meanwhile may have let go of the lock.
      if (dom.locks.toolstackWaiting()) {
        await this.#ctx.queue.run(dom.domid, () => {
          if (dom.locks.toolstackWaiting()) this.#handOver();
        });
      }
      const left = end - Date.now();
      if (left <= 0 || loop.stop.signal.aborted) return;
      await sleep(Math.min(left, HANDOVER_POLL_MS), loop.stop.signal);
    }
  }

  /** libxl is queued on the userdata lock we hold (the caller has just seen it): let go of everything, and cool down. */
  #handOver(): void {
    const dom = this.#dom;
    this.#sessions.release(dom);
    const why = "libxl queued on the domain's userdata lock (xl save, migrate, remus?): handed over";
    dom.otherTool = { at: Date.now(), why };
    this.#loop.lastSkip = why;
    this.#ctx.metrics.handovers.inc();
    this.#ctx.log(`checkpoint dom${dom.domid}: ${why}`);
  }

  /**
   * Whether the next cycle may run: not while another tool has the domain (its locks, its process,
   * its request, a suspend of its own) or had it moments ago. Takes libxl's locks when it may.
   */
  async #before(): Promise<CycleVerdict> {
    const dom = this.#dom;
    const d = dom.domid;
    const toolSeen = (why: string): CycleVerdict => {
      dom.otherTool = { at: Date.now(), why };
      return { skip: why };
    };
    // Another tool had the domain moments ago: it may come back at once (xl save run twice in a
    // row), and an xl that meets one of our cycles fails at its non-blocking suspend lock.
    const seen = dom.otherTool;
    const since = seen === undefined ? undefined : Date.now() - seen.at;
    if (seen !== undefined && since !== undefined && since < this.#ctx.settings.toolstackCooldownMs) {
      // libxl still holding its userdata lock (xl reading the configuration) starts it again.
      let busy: boolean;
      try {
        busy = dom.locks.toolstackBusy();
      } catch (err) {
        if (isXenError(err, "ESRCH")) return { gone: errorText(err) };
        busy = true;
      }
      if (busy) return toolSeen("libxl holds the domain's userdata lock (xl reading its configuration?)");
      return { skip: `cooling down: another tool had the domain ${since} ms ago (${seen.why})` };
    }
    if (dom.locks.toolstackWaiting()) {
      this.#handOver();
      return { skip: this.#loop.lastSkip ?? "handed over" };
    }
    try {
      // The locks only: the session subscribes right before its trigger, not while we look.
      dom.locks.take();
    } catch (err) {
      if (isXenError(err, "EAGAIN")) {
        const which = err.call.startsWith("flock") ? "libxl's userdata lock" : "the suspend lock";
        return toolSeen(`${which} held by another process (xl save/migrate/remus?)`);
      }
      if (isXenError(err, "ESRCH")) return { gone: errorText(err) };
      throw err;
    }
    let info: DomainInfo;
    try {
      info = this.#ctx.xen.getInfo(d);
    } catch (err) {
      if (isXenError(err, "ESRCH")) return { gone: errorText(err) };
      throw err;
    }
    const state = domainState(info);
    if (state === "dying" || state === "crashed" || state === "shutdown") return { gone: `domain ${d} is ${state}` };
    if (state === "suspended") {
      // Suspended with a timed-out request of ours outstanding (an event on the guest's channel
      // cannot be taken back, and a slow freezer may act on it seconds later): ours to resume.
      if (dom.session?.outstandingRequest === true) return { skip: await this.#sessions.resumeOwnLateSuspend(dom) };
      return toolSeen("domain suspended by another tool (xl save -c?)");
    }
    if (state === "paused") return toolSeen("domain paused by another tool");
    // xl save of a guest without a suspend channel takes no lock: its request in control/shutdown
    // is the only sign. Triggering now would take its suspend from it.
    const other = await otherTool(this.#ctx, d);
    if (other !== undefined) return toolSeen(other);
    return { run: true };
  }

  /**
   * One cycle, under the locks #before took: warm session, journal, cycle. The session binds and
   * subscribes right before its trigger and lets go of both once the guest is suspended.
   */
  async #cycle(): Promise<CycleTimings> {
    const { journal } = this.#ctx;
    const dom = this.#dom;
    const loop = this.#loop;
    const d = dom.domid;
    try {
      const s = await this.#sessions.session(dom, dom.requestedPath);
      // Journalled right before the trigger, until the guest is resumed: a crash in between leaves
      // the domain to the next start's recovery. Kept when a failed cycle leaves it suspended.
      journal.add(d, "checkpoint");
      let t: CycleTimings;
      try {
        t = await s.cycle(loop.timeoutMs === undefined ? {} : { timeoutMs: loop.timeoutMs });
      } catch (err) {
        if (!this.#suspendedNow()) journal.remove(d, "checkpoint");
        throw err;
      }
      journal.remove(d, "checkpoint");
      return t;
    } catch (err) {
      // A broken session is rebuilt on the next cycle.
      if (!loop.stop.signal.aborted && !isDomainEnded(err) && dom.session !== undefined && dom.session.state !== "open") await this.#sessions.close(dom, { force: true });
      throw err;
    }
  }

  #suspendedNow(): boolean {
    try {
      return isSuspended(this.#ctx.xen, this.#dom.domid);
    } catch {
      return false;
    }
  }

  /** After each attempt: a cycle that went well keeps libxl's userdata lock across the gap (see #gap). */
  #after(o: CycleOutcome): void {
    const dom = this.#dom;
    if (o.result !== "ok" || this.#loop.stop.signal.aborted) this.#sessions.release(dom);
    else if (dom.locks.toolstackWaiting()) this.#handOver();
    else this.#sessions.park(dom);
  }

  /** The loop's status, metrics and log, per attempt. */
  #onCycle(o: CycleOutcome): void {
    const { metrics, domains } = this.#ctx;
    const dom = this.#dom;
    const loop = this.#loop;
    const d = dom.domid;
    switch (o.result) {
      case "ok": {
        const t = o.timings;
        loop.path = t.path;
        metrics.cycles.inc({ ...domains.labels(d), result: "ok" });
        metrics.suspendSeconds.observe({ path: t.path }, t.suspendMs / 1000);
        metrics.resumeSeconds.observe({ path: t.path }, (t.resumeMs + t.xsResumeMs) / 1000);
        metrics.cycleSeconds.observe({ path: t.path }, t.totalMs / 1000);
        pushSample(dom.suspendMs, t.suspendMs);
        pushSample(dom.cycleMs, t.totalMs);
        const { path, ...timings } = t;
        dom.last = { op: "cycle", at: new Date().toISOString(), path, timings };
        return;
      }
      case "failed":
        loop.lastError = errorText(o.error);
        metrics.cycles.inc({ ...domains.labels(d), result: "failed" });
        metrics.cycleFailures.inc({ ...domains.labels(d), reason: failureReason(o.error) });
        this.#ctx.log(`checkpoint dom${d}: ${loop.lastError}`);
        return;
      case "skipped":
        loop.lastSkip = o.why;
        metrics.cycles.inc({ ...domains.labels(d), result: "skipped" });
        metrics.handovers.inc();
        return;
      case "gone":
        loop.stoppedBy ??= "domain-gone";
        return;
      case "interrupted":
        return;
    }
  }
}

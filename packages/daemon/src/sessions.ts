// One warm SuspendSession per domain, and libxl's locks around each piece of work on it. A session
// is opened on first use (with the requested path), kept across requests and checkpoint cycles,
// and replaced when another path is asked for or the domain was resumed behind its back. Its hold
// is "operation": libxl's locks (the domain's DomainLocks, which the daemon holds across its checks
// and the session's operation), the guest's suspend channel and the subscription are ours only
// during each piece of work, so that libxl finds them free between our cycles (xl save -c failed
// while a loop ran, see docs/daemon.md).
import { errorText, isSuspended, SuspendSession, type SessionOptions } from "@fastsuspend/coordinator";
import { isXenError } from "@fastsuspend/xen";

import type { DaemonContext } from "./context";
import type { DomainState } from "./domains";
import { resumeCheck } from "./journal";
import { DaemonError } from "./protocol";

export class Sessions {
  readonly #ctx: DaemonContext;

  constructor(ctx: DaemonContext) {
    this.#ctx = ctx;
  }

  /** Takes libxl's locks of the domain for a request's work; libxl holding one is EBUSY. */
  take(dom: DomainState, what: string): void {
    try {
      dom.locks.take();
    } catch (err) {
      if (isXenError(err, "EAGAIN")) {
        this.#ctx.metrics.handovers.inc();
        throw new DaemonError("EBUSY", `${what}: domain ${dom.domid}'s suspend lock is held by another process (xl save, migrate or remus in progress?): leaving it alone`);
      }
      throw err;
    }
  }

  /** Lets go of both locks. */
  release(dom: DomainState): void {
    this.#logProblems(dom.locks.release());
  }

  /** Lets go of the suspend lock, keeps libxl's userdata lock (a loop's gap). */
  park(dom: DomainState): void {
    this.#logProblems(dom.locks.park());
  }

  #logProblems(problems: string[]): void {
    if (problems.length > 0) this.#ctx.log(problems.join("; "));
  }

  /** The domain's warm session (opened now if needed, with the requested path). Call with its locks held. */
  async session(dom: DomainState, path: string | undefined): Promise<SuspendSession> {
    let s = dom.session;
    if (s !== undefined && s.state === "suspended" && !isSuspended(this.#ctx.xen, dom.domid)) {
      // Resumed behind our back (xl, or `fastsuspend resume --no-daemon`): start afresh.
      await this.close(dom, { force: true });
      s = undefined;
    }
    if (s !== undefined && (s.state === "closed" || (path !== undefined && path !== s.path))) {
      await this.close(dom, { force: true });
      s = undefined;
    }
    if (s === undefined) {
      // outstandingWaitMs 0: a request that may still be acted on is watched by the sweeper instead.
      const opts: SessionOptions = { ...this.#ctx.settings.session, hold: "operation", locks: dom.locks, outstandingWaitMs: 0 };
      if (path !== undefined) opts.path = path;
      s = new SuspendSession(this.#ctx.xen, this.#ctx.xs, dom.domid, opts);
      await s.open();
      dom.session = s;
      dom.path = s.path;
      dom.requestedPath = path;
      dom.caps = s.capabilities;
      dom.capsAt = Date.now();
    }
    return s;
  }

  /**
   * Closes a domain's session under its locks (so that unsubscribing cannot undo a subscription
   * libxl made meanwhile). If libxl holds them, the close waits for the next sweep unless forced
   * (the domain is gone, or the caller replaces the session under its own hold). Locks the caller
   * holds stay held.
   */
  async close(dom: DomainState, opts: { force: boolean }): Promise<void> {
    const s = dom.session;
    if (s === undefined) return;
    const takeNow = !opts.force && !dom.locks.held;
    if (takeNow) {
      try {
        dom.locks.take();
      } catch (err) {
        if (isXenError(err, "EAGAIN")) return; // libxl has it: try again later
        if (!isXenError(err, "ESRCH")) this.#ctx.log(`close session dom${dom.domid}: ${errorText(err)}`);
      }
    }
    dom.session = undefined;
    const report = await s.close({ resumeIfSuspended: false });
    const problems = [...report.problems, ...(takeNow ? dom.locks.release() : [])];
    if (problems.length > 0) this.#ctx.log(`session dom${dom.domid} closed: ${problems.join("; ")}`);
  }

  /**
   * A late suspend caused by a timed-out request of ours: resume it, with the checks any resume
   * makes (resumeCheck: not while an xl process may be copying the domain). Call with the locks
   * held. Returns what happened, for the log and the loop's lastSkip.
   */
  async resumeOwnLateSuspend(dom: DomainState): Promise<string> {
    const s = dom.session;
    const d = dom.domid;
    if (s === undefined || !s.outstandingRequest) return "no request of ours outstanding";
    let what: string;
    try {
      const { leave } = await resumeCheck(this.#ctx.xs, d, this.#ctx.settings.toolstackUser);
      if (leave !== undefined) what = `a late suspend of ours left alone: ${leave}`;
      else what = (await s.resumeLateSuspend()) ? "resumed a late suspend caused by our own timed-out request" : "no late suspend of ours to resume";
    } catch (err) {
      what = `resume of a late suspend of ours: ${errorText(err)}`;
    }
    this.#ctx.log(`dom${d}: ${what}`);
    return what;
  }
}

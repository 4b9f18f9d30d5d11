// SuspendSession: one domain, long-lived. open() sets up the path's channels ONCE; suspend()/
// resume()/cycle() then reuse them for every cycle of a checkpoint loop; close() undoes everything
// and never leaves the guest suspended (unless, with hold "operation", libxl has the domain by
// then: its suspend is libxl's to end). What it holds of libxl's is its `hold`:
//   "session"   (the CLI: one command) the suspend lock, the guest's channel binding and the
//               subscription from open() to close();
//   "operation" (fastsuspendd: sessions kept warm beside libxl) libxl's locks only during each
//               operation (open, suspend, resume, close), and the guest's channel binding and the
//               subscription only from the trigger to the after-suspended step. Between operations
//               `xl save`, `xl migrate` and `xl remus` find the domain as if we were not there. A
//               caller that checks the domain before an operation holds the session's DomainLocks
//               across both: the operation then runs inside the caller's hold.
import { isXenError, suspendLockPath, type EvtchnHandle, type XenBinding, type SuspendLock } from "@fastsuspend/xen";

import { msSince, now, sleep } from "./clock";
import { detect, type Capabilities } from "./detect";
import { choosePath, fallbackOrder } from "./choose";
import { DomainLocks } from "./domain-locks";
import { domainWaitState, isSuspended } from "./domain-state";
import { CoordinatorError, errorText, SuspendTimeoutError } from "./errors";
import { makeNotifier, type Notifier, type NotifierContext } from "./notifiers";
import { parsePath, type PathName } from "./paths";
import { makeTrigger, type TriggerImpl } from "./triggers";
import type { XenstoreLike } from "./xs";

/**
 * When to send XS_RESUME after xc_domain_resume (cxenstored needs it to fire @releaseDomain again).
 * "auto" skips it on oxenstored, whose XS_RESUME does nothing (Domains.resume is empty: it keeps no
 * per-domain shutdown state; docs/xs-resume.md), and sends it inline on any other xenstored.
 */
export type XsResumeMode = "inline" | "deferred" | "skip" | "auto";

/** oxenstored writes its executable's path here; C xenstored leaves the node empty. */
const XENSTORED_TOOL_KEY = "/tool/xenstored";

/** "auto" made concrete for the xenstored that answers: the node's value names oxenstored. */
export async function resolveXsResume(mode: XsResumeMode, xs: Pick<XenstoreLike, "tryReadString">): Promise<Exclude<XsResumeMode, "auto">> {
  if (mode !== "auto") return mode;
  const tool = await xs.tryReadString(XENSTORED_TOOL_KEY);
  return tool !== undefined && /(^|\/)oxenstored$/.test(tool.trim()) ? "skip" : "inline";
}

export interface SessionOptions {
  /** Force a path (e.g. "xenstore+watch"); default: the fastest available. */
  path?: string;
  /** On a timeout or a setup failure, try the next available path. */
  fallback?: boolean;
  /**
   * Default "auto": skipped on oxenstored, whose XS_RESUME does nothing (docs/xs-resume.md), and
   * "inline" (libxl's order) elsewhere, decided at open(); "inline" always sends it in the cycle;
   * "deferred" sends it after the cycle returns; "skip" never.
   */
  xsResume?: XsResumeMode;
  /** After a timeout, how long to give a guest that took the request to finish suspending. */
  lateSuspendGraceMs?: number;
  /** suspend() timeout when none is given (default 10000 ms). */
  defaultTimeoutMs?: number;
  /**
   * What the session holds between operations (see the top of this file): "session" (default)
   * everything from open() to close(); "operation" nothing libxl looks for (its locks, the guest's
   * channel binding, the suspend subscription). A daemon that keeps sessions warm needs "operation".
   */
  hold?: "session" | "operation";
  /**
   * hold "operation": the domain's locks, shared with a caller that holds them across its own
   * checks and the operation (default: the session's own, taken around each operation).
   */
  locks?: DomainLocks;
  /**
   * close() with resumeIfSuspended: how long to keep watching a domain that may still act on a
   * request of ours that could not be withdrawn (an event-channel trigger that timed out), so that
   * a late suspend is resumed rather than left behind (default 5000 ms).
   */
  outstandingWaitMs?: number;
}

export interface SuspendOptions {
  timeoutMs?: number;
}

export interface SuspendResult {
  path: PathName;
  /** Time the previous cycle's deferred XS_RESUME still cost us before we could trigger. */
  xsResumeWaitMs: number;
  triggerMs: number;
  awaitMs: number;
  confirmMs: number;
  /** trigger -> confirmed suspended. */
  suspendMs: number;
  /** Paths that failed first (with fallback). */
  failedPaths: { path: PathName; error: string }[];
}

export interface ResumeOptions {
  /** Cooperative resume (checkpoints: the guest keeps its channels). Default true. */
  fast?: boolean;
}

export interface ResumeResult {
  resumeMs: number;
  /** Inline XS_RESUME time; 0 when deferred or skipped. */
  xsResumeMs: number;
}

export interface CycleTimings {
  path: PathName;
  triggerMs: number;
  awaitMs: number;
  confirmMs: number;
  suspendMs: number;
  resumeMs: number;
  /** Inline XS_RESUME, or with "deferred" what the deferred one still cost at the next trigger. */
  xsResumeMs: number;
  totalMs: number;
}

export interface CloseReport {
  /** The domain was found suspended and resumed so that it is left running. */
  resumed: boolean;
  /**
   * A request of ours that could not be withdrawn was still outstanding when the session closed:
   * the guest may yet suspend, and nobody will resume it (`fastsuspend resume DOMID` does).
   */
  outstanding: boolean;
  /** What could not be undone (best effort: close never throws). */
  problems: string[];
}

export type SessionState = "new" | "open" | "suspended" | "closed";

const DEFAULT_TIMEOUT_MS = 10_000;
/** Longest wait without looking at the domain (crash/destroy detection on every path). */
const RECHECK_MS = 100;

export class SuspendSession {
  readonly domid: number;
  readonly #xen: XenBinding;
  readonly #xs: XenstoreLike;
  readonly #opts: Required<Omit<SessionOptions, "path" | "locks">> & { path: string | undefined };
  /** hold "operation": libxl's locks, held around each operation. */
  readonly #locks: DomainLocks | undefined;
  #state: SessionState = "new";
  #caps: Capabilities | undefined;
  #path: PathName | undefined;
  /** hold "session": the suspend lock, from open() to close(). */
  #lock: SuspendLock | undefined;
  #evtchn: EvtchnHandle | undefined;
  #trigger: TriggerImpl | undefined;
  #notifier: Notifier | undefined;
  #rebind = false;
  #pendingXsResume: Promise<void> | undefined;
  #deferredProblems: string[] = [];
  #inflight: Promise<unknown> | undefined;
  #abort = new AbortController();
  #closing: Promise<CloseReport> | undefined;
  /**
   * A suspend request of ours that timed out and could not be taken back (an event on the guest's
   * channel, or a xenstore request the guest had acked): the guest may still act on it. Until it
   * does, or a later suspend of ours completes, a suspended domain is ours to resume.
   */
  #outstanding = false;
  /** The XS_RESUME mode in effect ("auto" resolved at open()). */
  #xsResume: Exclude<XsResumeMode, "auto"> = "inline";

  constructor(xen: XenBinding, xs: XenstoreLike, domid: number, opts: SessionOptions = {}) {
    this.domid = domid;
    this.#xen = xen;
    this.#xs = xs;
    this.#opts = {
      path: opts.path,
      fallback: opts.fallback ?? false,
      xsResume: opts.xsResume ?? "auto",
      lateSuspendGraceMs: opts.lateSuspendGraceMs ?? 1000,
      defaultTimeoutMs: opts.defaultTimeoutMs ?? DEFAULT_TIMEOUT_MS,
      hold: opts.hold ?? "session",
      outstandingWaitMs: opts.outstandingWaitMs ?? 5000,
    };
    this.#locks = this.#opts.hold === "operation" ? (opts.locks ?? new DomainLocks(xen, domid)) : undefined;
    this.#xsResume = this.#opts.xsResume === "auto" ? "inline" : this.#opts.xsResume;
  }

  /** libxl's locks of the domain with hold "operation" (undefined with hold "session"). */
  get locks(): DomainLocks | undefined {
    return this.#locks;
  }

  /** The lock taken as open() takes it: a held lock is ELOCKED, nothing else. */
  #lockError(err: unknown): unknown {
    const d = this.domid;
    if (isXenError(err, "EAGAIN")) {
      return new CoordinatorError("ELOCKED", d, `domain ${d}'s suspend lock (${suspendLockPath(d)}) is held by another process (libxl, xl save or xl migrate in progress?): not touching it`, { cause: err });
    }
    if (isXenError(err, "EBUSY")) {
      return new CoordinatorError("ELOCKED", d, `domain ${d}'s suspend lock is already held by this process (another session is open)`, { cause: err });
    }
    return err;
  }

  /**
   * hold "operation": runs one operation under libxl's locks, taken for it and let go after it,
   * unless the caller holds them already (then the operation is part of the caller's hold).
   */
  async #operation<T>(op: () => Promise<T>): Promise<T> {
    const locks = this.#locks;
    if (locks === undefined || locks.held) return op();
    try {
      locks.take();
    } catch (err) {
      throw this.#lockError(err);
    }
    try {
      return await op();
    } finally {
      this.#deferredProblems.push(...locks.release());
    }
  }

  get state(): SessionState {
    return this.#state;
  }
  get path(): PathName | undefined {
    return this.#path;
  }
  /** The XS_RESUME mode in effect: "auto" is resolved by open(). */
  get xsResumeMode(): Exclude<XsResumeMode, "auto"> {
    return this.#xsResume;
  }

  get capabilities(): Capabilities | undefined {
    return this.#caps;
  }
  /** A timed-out request of ours that the guest may still act on (see resumeLateSuspend). */
  get outstandingRequest(): boolean {
    return this.#outstanding;
  }

  /**
   * The guest acted on a request of ours after we gave up on it (a freezer that took seconds):
   * resume it. Call with the domain's lock held and after checking that no other tool is at work
   * on it. Returns whether it resumed the domain.
   */
  async resumeLateSuspend(): Promise<boolean> {
    const closed = this.#notOpen("resumeLateSuspend");
    if (closed !== undefined) throw closed;
    if (!this.#outstanding || this.#inflight !== undefined || !isSuspended(this.#xen, this.domid)) return false;
    return this.#operation(async () => {
      this.#outstanding = false;
      await this.#resumeDomain(true);
      this.#state = "open";
      return true;
    });
  }

  /**
   * Takes the lock, detects, picks the path and sets it up (with hold "session" binds and
   * subscribes too; with "operation" lets go of the lock after). Nothing is left held on failure.
   */
  async open(): Promise<Capabilities> {
    if (this.#state !== "new") throw new CoordinatorError("ESESSION", this.domid, `session for domain ${this.domid} was already opened`);
    const d = this.domid;
    if (d === 0) {
      throw new CoordinatorError("ECONTROLDOMAIN", d, `domain ${d} is the control domain: it cannot be suspended from here`);
    }
    if (this.#locks !== undefined) return this.#operation(() => this.#setUpFirst());
    try {
      this.#lock = this.#xen.lockSuspend(d);
    } catch (err) {
      throw this.#lockError(err);
    }
    try {
      return await this.#setUpFirst();
    } catch (err) {
      this.#lock.release();
      this.#lock = undefined;
      throw err;
    }
  }

  /** open() under the lock: detect, then the first path that sets up. Nothing is left set up on failure. */
  async #setUpFirst(): Promise<Capabilities> {
    const d = this.domid;
    try {
      const caps = await detect(this.#xen, this.#xs, d, { lockHeld: true });
      this.#caps = caps;
      this.#xsResume = await resolveXsResume(this.#opts.xsResume, this.#xs);
      const first = choosePath(caps, this.#opts.path);
      const candidates = this.#opts.fallback ? [first, ...fallbackOrder(caps, first, "notification")] : [first];
      let lastErr: unknown;
      for (const p of candidates) {
        try {
          await this.#setUp(p);
          this.#state = isSuspended(this.#xen, d) ? "suspended" : "open";
          return caps;
        } catch (err) {
          lastErr = err;
          await this.#tearDownPath();
        }
      }
      throw lastErr;
    } catch (err) {
      await this.#tearDownPath();
      this.#evtchn?.close();
      this.#evtchn = undefined;
      this.#state = "closed";
      throw err;
    }
  }

  #handle(): EvtchnHandle {
    this.#evtchn ??= this.#xen.openEvtchn();
    return this.#evtchn;
  }

  async #setUp(name: PathName): Promise<void> {
    const p = parsePath(name);
    if (p === undefined) throw new CoordinatorError("ENOPATH", this.domid, `unknown path ${name}`);
    const ctx: NotifierContext = {
      xen: this.#xen,
      xs: this.#xs,
      domid: this.domid,
      evtchn: () => this.#handle(),
      hold: this.#opts.hold,
    };
    this.#path = name;
    this.#notifier = makeNotifier(p.notification, ctx);
    this.#trigger = makeTrigger(p.trigger, ctx);
    await this.#notifier.open();
    await this.#trigger.open();
  }

  async #tearDownPath(): Promise<string[]> {
    const problems: string[] = [];
    const n = this.#notifier;
    const t = this.#trigger;
    this.#notifier = undefined;
    this.#trigger = undefined;
    if (n !== undefined) problems.push(...(await n.close()));
    if (t !== undefined) problems.push(...(await t.close()));
    return problems;
  }

  #notOpen(op: string): CoordinatorError | undefined {
    if (this.#state === "closed" || this.#closing !== undefined) {
      return new CoordinatorError("ECLOSED", this.domid, `${op}: the session for domain ${this.domid} is closed`);
    }
    if (this.#state === "new") return new CoordinatorError("ESESSION", this.domid, `${op}: open() the session for domain ${this.domid} first`);
    return undefined;
  }

  /** Interrupts an in-flight suspend (it cancels as on a timeout). Used by the signal guard. */
  interrupt(): void {
    this.#abort.abort(new CoordinatorError("EINTERRUPTED", this.domid, `suspend of domain ${this.domid} interrupted`));
  }

  suspend(opts: SuspendOptions = {}): Promise<SuspendResult> {
    const closed = this.#notOpen("suspend");
    if (closed !== undefined) return Promise.reject(closed);
    if (this.#state === "suspended") {
      return Promise.reject(new CoordinatorError("ESUSPENDED", this.domid, `domain ${this.domid} is already suspended: resume it first`));
    }
    if (this.#inflight !== undefined) {
      return Promise.reject(new CoordinatorError("EINPROGRESS", this.domid, `a suspend or resume of domain ${this.domid} is already in progress`));
    }
    this.#abort = new AbortController();
    const run = this.#operation(() => this.#suspend(opts.timeoutMs ?? this.#opts.defaultTimeoutMs));
    this.#inflight = run
      .finally(() => {
        this.#inflight = undefined;
      })
      .catch(() => undefined); // the caller gets the error through `run`

    return run;
  }

  async #suspend(timeoutMs: number): Promise<SuspendResult> {
    let xsResumeWaitMs = 0;
    if (this.#outstanding && isSuspended(this.#xen, this.domid)) {
      // Our own earlier request, acted on late: the domain is ours to resume before a new one.
      this.#outstanding = false;
      await this.#resumeDomain(true);
    }
    if (this.#rebind) await this.#setUpAgain();
    const failedPaths: SuspendResult["failedPaths"] = [];
    for (;;) {
      const path = this.#path;
      if (path === undefined) throw new CoordinatorError("ESESSION", this.domid, `no path set up for domain ${this.domid}`);
      // A deferred XS_RESUME re-arms xenstored's @releaseDomain for this domain, so only the watch
      // notification has to wait for it. Other paths let it overlap this suspend: xenstored
      // handles one connection's requests in order, so it still precedes a xenstore trigger.
      if (this.#pendingXsResume !== undefined && parsePath(path)?.notification === "watch") {
        const tw = now();
        await this.#pendingXsResume;
        xsResumeWaitMs += msSince(tw);
      }
      try {
        const r = await this.#suspendOnce(path, timeoutMs);
        this.#state = "suspended";
        return { ...r, path, xsResumeWaitMs, failedPaths };
      } catch (err) {
        if (!this.#opts.fallback || this.#abort.signal.aborted) throw err;
        const timedOut = err instanceof SuspendTimeoutError;
        const setupFailed = err instanceof CoordinatorError && err.code === "ENOPATH";
        if (!timedOut && !setupFailed && !isXenError(err)) throw err;
        failedPaths.push({ path, error: errorText(err) });
        const tried = new Set(failedPaths.map((f) => f.path));
        const next = fallbackOrder(this.#capsOrThrow(), path, timedOut ? "trigger" : "notification").find((p) => !tried.has(p));
        if (next === undefined) throw err;
        await this.#tearDownPath();
        await this.#setUp(next);
      }
    }
  }

  /**
   * After a full resume (the guest's ports are new) or a route found gone (a channel withdrawn or
   * renewed): set the path up again from what the guest advertises now. With fallback, a path that
   * no longer works gives way to the fastest one that does. Left to retry at the next suspend if
   * nothing works.
   */
  async #setUpAgain(): Promise<void> {
    await this.#tearDownPath();
    const want = this.#path ?? choosePath(this.#capsOrThrow(), this.#opts.path);
    try {
      await this.#setUp(want);
      this.#rebind = false;
      return;
    } catch (err) {
      await this.#tearDownPath();
      if (!this.#opts.fallback) throw err;
    }
    const caps = await detect(this.#xen, this.#xs, this.domid, { lockHeld: true });
    this.#caps = caps;
    let lastErr: unknown = new CoordinatorError("ENOPATH", this.domid, `no suspend path left for domain ${this.domid}`);
    for (const p of caps.paths) {
      try {
        await this.#setUp(p);
        this.#rebind = false;
        return;
      } catch (err) {
        lastErr = err;
        await this.#tearDownPath();
      }
    }
    throw lastErr;
  }

  #capsOrThrow(): Capabilities {
    if (this.#caps === undefined) throw new CoordinatorError("ESESSION", this.domid, `session for domain ${this.domid} is not open`);
    return this.#caps;
  }

  async #suspendOnce(path: PathName, timeoutMs: number): Promise<Omit<SuspendResult, "path" | "xsResumeWaitMs" | "failedPaths">> {
    const trigger = this.#trigger;
    const notifier = this.#notifier;
    if (trigger === undefined || notifier === undefined) throw new CoordinatorError("ESESSION", this.domid, "path not set up");
    domainWaitState(this.#xen, this.domid, "before the suspend request"); // refuse a domain already gone
    try {
      await trigger.arm();
      notifier.arm();
    } catch (err) {
      // The route is gone (e.g. the guest renewed its channel): set the path up again next time.
      this.#rebind = true;
      await this.#afterSuspended(trigger, notifier);
      throw err;
    }
    try {
      return await this.#requestAndWait(path, timeoutMs, trigger, notifier);
    } finally {
      await this.#afterSuspended(trigger, notifier);
    }
  }

  /**
   * The after-suspended step, once the suspend is confirmed or given up, before any resume: with
   * hold "operation", let go of what only the request needed. The guest's channel is unbound
   * (libxl can bind it), and the subscription is dropped, so that a suspend request another tool
   * queued meanwhile (xl save writing control/shutdown while our cycle ran) is reported the normal
   * way (VIRQ_DOM_EXC, @releaseDomain) when the guest acts on it right after our resume.
   */
  async #afterSuspended(trigger: TriggerImpl, notifier: Notifier): Promise<void> {
    this.#deferredProblems.push(...notifier.release(), ...(await trigger.release()));
  }

  async #requestAndWait(path: PathName, timeoutMs: number, trigger: TriggerImpl, notifier: Notifier): Promise<Omit<SuspendResult, "path" | "xsResumeWaitMs" | "failedPaths">> {
    const d = this.domid;
    const signal = this.#abort.signal;
    const while_ = `while waiting for it to suspend (${path})`;
    notifier.drain();
    const t0 = now();
    await trigger.fire();
    const t1 = now();
    const deadline = t0 + BigInt(Math.round(timeoutMs * 1e6));
    let tWake = t1;
    for (;;) {
      const remainingMs = Number(deadline - now()) / 1e6;
      // Sliced: a subscribed port only fires on suspend, so a crash is seen at the next slice.
      if (remainingMs > 0 && !signal.aborted) await notifier.wake(Math.min(remainingMs, RECHECK_MS), signal);
      tWake = now();
      const state = domainWaitState(this.#xen, d, while_);
      const t3 = now();
      if (state === "suspended") {
        this.#outstanding = false; // a pending request of ours has been served now
        return {
          triggerMs: msSince(t0, t1),
          awaitMs: msSince(t1, tWake),
          confirmMs: msSince(tWake, t3),
          suspendMs: msSince(t0, t3),
        };
      }
      if (now() >= deadline || signal.aborted) break;
    }
    const err = await this.#cancelAfterTimeout(path, timeoutMs, trigger, notifier);
    // Xen drops a notification to a port whose guest end was closed without an error, and a
    // renewed channel may even get the same port number: after a timeout on the guest's channel,
    // set the path up again from what the guest advertises now (a bind proves it is ours).
    if (trigger.kind === "evtchn") this.#rebind = true;
    if (signal.aborted) {
      throw new CoordinatorError("EINTERRUPTED", d, `suspend of domain ${d} interrupted (${path}); it is left running`, { cause: err });
    }
    throw err;
  }

  /** The guest did not suspend in time: take the request back, and undo a late suspend. */
  async #cancelAfterTimeout(path: PathName, timeoutMs: number, trigger: TriggerImpl, notifier: Notifier): Promise<SuspendTimeoutError> {
    const d = this.domid;
    const outcome = await trigger.cancel();
    let resumedLateSuspend = false;
    if (outcome.acked || outcome.unrevocable) {
      // It took the request (or we cannot know): give it a moment to finish, then resume it.
      const end = now() + BigInt(Math.round(this.#opts.lateSuspendGraceMs * 1e6));
      while (now() < end) {
        if (domainWaitState(this.#xen, d, `after a timed-out suspend (${path})`) === "suspended") break;
        await notifier.wake(Math.min(50, Number(end - now()) / 1e6));
      }
    }
    if (isSuspended(this.#xen, d)) {
      await this.#resumeDomain(true);
      resumedLateSuspend = true;
    }
    this.#outstanding = !resumedLateSuspend && (outcome.acked || outcome.unrevocable);
    return new SuspendTimeoutError(d, {
      path,
      timeoutMs,
      withdrawn: outcome.withdrawn,
      resumedLateSuspend,
      unrevocable: outcome.unrevocable && !resumedLateSuspend,
    });
  }

  async #resumeDomain(fast: boolean): Promise<ResumeResult> {
    const t0 = now();
    this.#xen.resume(this.domid, fast);
    const resumeMs = msSince(t0);
    if (!fast) this.#rebind = true;
    let xsResumeMs = 0;
    if (this.#xsResume === "inline") {
      const t1 = now();
      await this.#xs.resumeDomain(this.domid);
      xsResumeMs = msSince(t1);
    } else if (this.#xsResume === "deferred") {
      const prev = this.#pendingXsResume ?? Promise.resolve();
      this.#pendingXsResume = prev
        .then(() => this.#xs.resumeDomain(this.domid))
        .catch((err: unknown) => {
          this.#deferredProblems.push(`deferred XS_RESUME: ${errorText(err)}`);
        })
        .finally(() => {
          this.#pendingXsResume = undefined;
        });
    }
    return { resumeMs, xsResumeMs };
  }

  /** xc_domain_resume (fast = cooperative) then XS_RESUME (per the xsResume option). */
  resume(opts: ResumeOptions = {}): Promise<ResumeResult> {
    const closed = this.#notOpen("resume");
    if (closed !== undefined) return Promise.reject(closed);
    if (this.#inflight !== undefined) {
      return Promise.reject(new CoordinatorError("EINPROGRESS", this.domid, `a suspend or resume of domain ${this.domid} is already in progress`));
    }
    const run = this.#operation(async () => {
      const st = domainWaitState(this.#xen, this.domid, "before resume");
      if (st !== "suspended") throw new CoordinatorError("ENOTSUSPENDED", this.domid, `domain ${this.domid} is not suspended: nothing to resume`);
      const r = await this.#resumeDomain(opts.fast ?? true);
      this.#state = "open";
      return r;
    });
    this.#inflight = run.finally(() => {
      this.#inflight = undefined;
    }).catch(() => undefined);
    return run;
  }

  /**
   * suspend -> resume, with per-phase timings, as one operation (hold "operation": under the locks
   * throughout).
   */
  cycle(opts: SuspendOptions & ResumeOptions = {}): Promise<CycleTimings> {
    return this.#operation(() => this.#cycle(opts));
  }

  async #cycle(opts: SuspendOptions & ResumeOptions): Promise<CycleTimings> {
    const t0 = now();
    const s = await this.suspend(opts);
    const r = await this.resume(opts);
    return {
      path: s.path,
      triggerMs: s.triggerMs,
      awaitMs: s.awaitMs,
      confirmMs: s.confirmMs,
      suspendMs: s.suspendMs,
      resumeMs: r.resumeMs,
      xsResumeMs: this.#xsResume === "deferred" ? s.xsResumeWaitMs : r.xsResumeMs,
      totalMs: msSince(t0),
    };
  }

  /** Problems of deferred XS_RESUMEs so far (taken: the list is emptied). */
  takeDeferredProblems(): string[] {
    return this.#deferredProblems.splice(0);
  }

  /**
   * Releases everything: unsubscribe (port 0) / unregister, unbind, close the handle, release the
   * lock. A domain found suspended is resumed first (resumeIfSuspended, default true), so a session
   * never leaves its guest suspended. Idempotent; never throws.
   */
  close(opts: { resumeIfSuspended?: boolean } = {}): Promise<CloseReport> {
    this.#closing ??= this.#closeUnderLock(opts.resumeIfSuspended ?? true);
    return this.#closing;
  }

  /**
   * hold "operation": close under libxl's locks if they can be had (so that unsubscribing cannot
   * undo a subscription libxl made meanwhile). If not (libxl has the domain, or it is gone), what
   * is ours is still undone, but a suspended domain is left as it is: it may be libxl's now.
   */
  async #closeUnderLock(resumeIfSuspended: boolean): Promise<CloseReport> {
    const locks = this.#locks;
    if (locks === undefined || this.#state === "new" || this.#state === "closed") return this.#close(resumeIfSuspended, true);
    if (this.#inflight !== undefined) {
      // An operation of its own in flight lets go of the locks when it ends: look after that.
      this.interrupt();
      await this.#inflight;
    }
    if (locks.held) return this.#close(resumeIfSuspended, true);
    try {
      locks.take();
    } catch (err) {
      const report = await this.#close(resumeIfSuspended, false);
      if (!isXenError(err, "ESRCH")) report.problems.push(`closed without the domain's locks (${errorText(err)}): a suspended domain was left as it is`);
      return report;
    }
    let report: CloseReport | undefined;
    try {
      report = await this.#close(resumeIfSuspended, true);
      return report;
    } finally {
      const problems = locks.release();
      report?.problems.push(...problems);
    }
  }

  async #close(resumeIfSuspended: boolean, locked: boolean): Promise<CloseReport> {
    const problems: string[] = [];
    let resumed = false;
    if (this.#state === "new" || this.#state === "closed") {
      this.#state = "closed";
      return { resumed, outstanding: false, problems };
    }
    this.interrupt();
    if (this.#inflight !== undefined) await this.#inflight.catch(() => undefined);
    if (this.#pendingXsResume !== undefined) await this.#pendingXsResume;
    let strayOfOurs = false;
    if (this.#outstanding) {
      // A request we could not take back may still be acted on: watch a while longer (bounded),
      // and resume a suspend it causes, whatever resumeIfSuspended says: nobody asked for that one.
      try {
        const end = now() + BigInt(Math.round(this.#opts.outstandingWaitMs * 1e6));
        while (now() < end && domainWaitState(this.#xen, this.domid, "while closing") !== "suspended") await sleep(Math.min(50, Number(end - now()) / 1e6));
        strayOfOurs = isSuspended(this.#xen, this.domid);
      } catch {
        // gone, crashed or shut down: nothing of ours to resume
      }
      if (strayOfOurs) this.#outstanding = false;
    }
    try {
      if (locked && (resumeIfSuspended || strayOfOurs) && isSuspended(this.#xen, this.domid)) {
        this.#xen.resume(this.domid, true);
        resumed = true;
        await this.#xs.resumeDomain(this.domid).catch((err: unknown) => {
          problems.push(`XS_RESUME: ${errorText(err)}`);
        });
      }
    } catch (err) {
      problems.push(`resume on close: ${errorText(err)}`);
    }
    problems.push(...(await this.#tearDownPath()));
    try {
      this.#evtchn?.close();
    } catch (err) {
      problems.push(`close event channel handle: ${errorText(err)}`);
    }
    this.#evtchn = undefined;
    try {
      this.#lock?.release();
    } catch (err) {
      problems.push(`release suspend lock: ${errorText(err)}`);
    }
    this.#lock = undefined;
    problems.push(...this.takeDeferredProblems());
    this.#state = "closed";
    return { resumed, outstanding: this.#outstanding, problems };
  }
}

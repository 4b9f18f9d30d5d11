// The daemon's state and operations, independent of the socket: follows domains, keeps one
// SuspendSession per domain (opened on first use, kept warm across checkpoint cycles, closed when
// the domain goes or after idleMs without use), serialises each domain's work, runs checkpoint
// loops, journals what it may leave suspended, and keeps the metrics.
import {
  CheckpointRunner,
  choosePath,
  controlShutdownKey,
  DomainLocks,
  detect,
  domainState,
  domainStateText,
  errorText,
  isCoordinatorError,
  isDomainEnded,
  isSuspended,
  resumeSuspended,
  shutdownReasonText,
  sleep,
  summarize,
  SuspendSession,
  type Capabilities,
  type CycleOutcome,
  type CycleTimings,
  type CycleVerdict,
  type SessionOptions,
  type Summary,
  type XenstoreLike,
  type XsWatchLike,
} from "@fastsuspend/coordinator";
import { isXenError, type DomainInfo, type XenBinding } from "@fastsuspend/xen";

import { CriticalGate } from "./gate";
import { ToolstackScanner } from "./toolstack";
import { Journal, resumeCheck } from "./journal";
import { DaemonMetrics, domainLabels, failureReason } from "./daemon-metrics";
import { EventLoopLag } from "./loop-lag";
import { KeyedQueue } from "./queue";
import {
  DaemonError,
  DEFAULT_PROGRESS_MS,
  type CheckpointProgress,
  type CheckpointRequest,
  type CheckpointStartReply,
  type CheckpointStartRequest,
  type DaemonStatus,
  type DomainStatus,
  type LastOp,
  type LoopReply,
  type LoopStatus,
  type Op,
  type Request,
  type RequestOf,
  type Result,
  type ResultOf,
  type ResumeReply,
  type SuspendReply,
  type SuspendRequest,
} from "./protocol";

export interface DaemonOptions {
  xen: XenBinding;
  xs: XenstoreLike;
  journal: Journal;
  /** Close a domain's session after this long without use (default 60 s). */
  idleMs?: number;
  /** Session defaults (fallback, xsResume...); a request's path overrides `path`. */
  session?: SessionOptions;
  log?: (line: string) => void;
  /**
   * Whether the toolstack (xl save/migrate/remus) works on the domain now (default: a /proc scan,
   * see toolstack.ts); tests pass their own. The userdata lock (DomainLocks) does the rest.
   */
  toolstackUser?: (domid: number, name: string | undefined) => Promise<string | undefined> | string | undefined;
  /**
   * Cycles keep skipping this long after another tool was last seen on the domain (its lock held,
   * its process, its request), so that an xl that has read the domain's configuration reaches the
   * suspend lock before our next cycle (default 2000 ms).
   */
  toolstackCooldownMs?: number;
  /**
   * Longest time a `status` or `metrics` request waits for time-critical work in flight (a
   * checkpoint cycle and its checks, a suspend, a resume) before it is answered anyway (default
   * 500 ms). See gate.ts.
   */
  maxRequestHoldMs?: number;
  /**
   * How long the metrics keep a gone domain's series (its last counts), so that the next scrape
   * still sees them (default 300 000 ms: a few scrape intervals).
   */
  goneSeriesMs?: number;
}

interface Loop extends Pick<LoopStatus, "running" | "intervalMs" | "count" | "path" | "startedAt" | "lastError" | "lastSkip" | "stoppedBy"> {
  /** The coordinator's checkpoint runner: the loop's counts and its latency summary. */
  runner: CheckpointRunner;
  stop: AbortController;
  finished: Promise<void>;
  timeoutMs: number | undefined;
}

interface DomainState {
  domid: number;
  /** libxl's locks of the domain: held around each piece of work, the userdata lock across a loop's gaps. */
  locks: DomainLocks;
  /** When and why another tool was last seen on the domain (cycles cool down; see #cycleOnce). */
  otherTool?: { at: number; why: string };
  session: SuspendSession | undefined;
  /** The path asked for when the session was opened (undefined: fastest available). */
  requestedPath: string | undefined;
  caps: Capabilities | undefined;
  capsAt: number;
  last: LastOp | undefined;
  suspendMs: number[];
  cycleMs: number[];
  loop: Loop | undefined;
  lastUsed: number;
  /** Suspended by a `suspend` request and not resumed since: not touched by idle close or shutdown. */
  userSuspended: boolean;
  /** The path of the last session opened (kept after an idle close: what the domain uses). */
  path: string | undefined;
}

/** Where a `checkpoint` request's progress frames go (the server writes them to the connection). */
export type ProgressSink = (p: CheckpointProgress) => void;

const CAPS_TTL_MS = 10_000;
/** Samples kept for the rolling latencies in status, and for a loop's own summary. */
const ROLLING_WINDOW = 100;
/** A loop stops after this many failed cycles in a row. */
const MAX_CONSECUTIVE_FAILURES = 10;
/** How often a loop's gap looks for libxl queued on the userdata lock it keeps. */
const HANDOVER_POLL_MS = 20;

/** Maps anything thrown below the daemon to a wire error. */
export function toDaemonError(err: unknown): DaemonError {
  if (err instanceof DaemonError) return err;
  if (isCoordinatorError(err)) return new DaemonError(err.code, err.message);
  if (isXenError(err, "ESRCH")) return new DaemonError("ENODOMAIN", err.message);
  if (isXenError(err, "EAGAIN")) return new DaemonError("EBUSY", `${err.message} (another process holds the domain's suspend lock: xl save/migrate/remus?)`);
  return new DaemonError("EINTERNAL", errorText(err));
}

export class Daemon {
  readonly xen: XenBinding;
  readonly xs: XenstoreLike;
  readonly journal: Journal;
  readonly startedAt = Date.now();
  readonly lag = new EventLoopLag();
  readonly metrics: DaemonMetrics;
  readonly #goneSeriesMs: number;
  readonly #opts: Required<Omit<DaemonOptions, "xen" | "xs" | "journal" | "session" | "log" | "maxRequestHoldMs" | "goneSeriesMs">> & { session: SessionOptions; log: (line: string) => void };
  /** Time-critical work first: status and metrics wait for it (bounded). */
  readonly gate: CriticalGate;
  readonly scanner = new ToolstackScanner();
  readonly #names = new Map<number, string | undefined>();
  readonly #queue = new KeyedQueue<number>();
  readonly #domains = new Map<number, DomainState>();
  /** Domains seen in the last listing (domid -> info), dom0 excluded. */
  #known = new Map<number, DomainInfo>();
  readonly #watches: XsWatchLike[] = [];
  #refreshTimer: NodeJS.Timeout | undefined;
  #sweeper: NodeJS.Timeout | undefined;
  #stopping: Promise<void> | undefined;
  /** Set by the server: connected clients, for the gauge. */
  clients = (): number => 0;

  constructor(opts: DaemonOptions) {
    this.xen = opts.xen;
    this.xs = opts.xs;
    this.journal = opts.journal;
    this.#opts = {
      idleMs: opts.idleMs ?? 60_000,
      session: opts.session ?? {},
      log: opts.log ?? (() => undefined),
      toolstackUser: opts.toolstackUser ?? ((domid, name) => this.scanner.user(domid, name)),
      toolstackCooldownMs: opts.toolstackCooldownMs ?? 2000,
    };
    this.gate = new CriticalGate(opts.maxRequestHoldMs ?? 500);
    this.#goneSeriesMs = opts.goneSeriesMs ?? 300_000;
    this.metrics = new DaemonMetrics({
      domains: () => [...this.#domains.values()].map((d) => ({
        domid: d.domid,
        name: this.#names.get(d.domid),
        path: d.path,
        caps: d.session?.capabilities ?? d.caps,
        requestedPath: d.requestedPath,
        loop: d.loop?.running === true ? { intervalMs: d.loop.intervalMs, done: d.loop.runner.counts.done } : undefined,
      })),
      sessionsOpen: () => [...this.#domains.values()].filter((d) => d.session !== undefined).length,
      domainsFollowed: () => this.#known.size,
      clients: () => this.clients(),
    }, this.lag);
  }

  #aborted(loop: Loop): boolean {
    return loop.stop.signal.aborted;
  }

  /** Read through a method: the loop may change across an await. */
  #loopRunning(dom: DomainState): boolean {
    return dom.loop?.running === true;
  }

  #loops(): DomainState[] {
    return [...this.#domains.values()].filter((d) => d.loop?.running === true);
  }

  get stopping(): boolean {
    return this.#stopping !== undefined;
  }

  /** Lists the domains and watches @introduceDomain/@releaseDomain; starts the idle sweeper. */
  async start(): Promise<void> {
    this.lag.start();
    this.#refresh();
    for (const path of ["@introduceDomain", "@releaseDomain"]) {
      const w = await this.xs.watch(path);
      this.#watches.push(w);
      void this.#follow(w);
    }
    this.#sweeper = setInterval(() => {
      this.#sweepIdle();
    }, Math.max(50, Math.min(5000, this.#opts.idleMs / 4)));
    this.#sweeper.unref();
  }

  async #follow(w: XsWatchLike): Promise<void> {
    try {
      for (let r = await w.next(); r.done !== true; r = await w.next()) {
        if (this.stopping) break;
        // Coalesce bursts (each checkpoint cycle on the watch path fires @releaseDomain).
        this.#refreshTimer ??= setTimeout(() => {
          this.#refreshTimer = undefined;
          this.#refresh();
        }, 20);
      }
    } catch (err) {
      if (!this.stopping) this.#opts.log(`domain watch ended: ${errorText(err)}`);
    }
  }

  /** Re-reads the domain list; drops the state of domains that are gone or dying. */
  #refresh(): void {
    let list: DomainInfo[];
    try {
      list = this.xen.listDomains();
    } catch (err) {
      this.#opts.log(`listDomains: ${errorText(err)}`);
      return;
    }
    const next = new Map<number, DomainInfo>();
    for (const info of list) if (info.domid !== 0) next.set(info.domid, info);
    for (const d of this.#known.keys()) if (!next.has(d)) this.#opts.log(`domain ${d} released`);
    for (const d of next.keys()) if (!this.#known.has(d)) this.#opts.log(`domain ${d} introduced`);
    this.#known = next;
    for (const dom of [...this.#domains.values()]) {
      const info = next.get(dom.domid);
      if (info === undefined || domainState(info) === "dying") void this.#dropDomain(dom, "domain-gone");
    }
  }

  async #dropDomain(dom: DomainState, why: LoopStatus["stoppedBy"]): Promise<void> {
    if (this.#domains.get(dom.domid) !== dom) return;
    this.#domains.delete(dom.domid);
    this.#names.delete(dom.domid);
    this.metrics.forgetDomain(dom.domid, this.#goneSeriesMs);
    if (dom.loop?.running === true) {
      dom.loop.stoppedBy = why;
      dom.loop.stop.abort();
    }
    dom.session?.interrupt();
    await dom.loop?.finished;
    await this.#closeSession(dom, { force: true });
    this.#release(dom);
    this.journal.remove(dom.domid);
  }

  #sweepIdle(): void {
    const now = Date.now();
    for (const dom of this.#domains.values()) {
      if (dom.session === undefined || dom.loop?.running === true || dom.userSuspended) continue;
      if (dom.session.outstandingRequest) {
        // Kept open while the guest may still act on a request of ours: resume a late suspend.
        if (this.#queue.depth(dom.domid) === 0) void this.#queue.run(dom.domid, () => this.#sweepLateSuspend(dom));
        continue;
      }
      if (this.#queue.depth(dom.domid) > 0 || now - dom.lastUsed < this.#opts.idleMs) continue;
      void this.#queue.run(dom.domid, () => this.#closeSession(dom, { force: false }));
    }
  }

  /** The sweeper's turn at a late suspend of ours (no loop running): under the lock, see #resumeOwnLateSuspend. */
  async #sweepLateSuspend(dom: DomainState): Promise<void> {
    try {
      dom.locks.take();
    } catch (err) {
      if (!isXenError(err, "EAGAIN") && !isXenError(err, "ESRCH")) this.#opts.log(`dom${dom.domid}: ${errorText(err)}`);
      return;
    }
    try {
      await this.#resumeOwnLateSuspend(dom);
    } finally {
      this.#release(dom);
    }
  }

  /**
   * A late suspend caused by a timed-out request of ours: resume it, with the checks any resume
   * makes (resumeCheck: not while an xl process may be copying the domain). Call with the lock
   * held. Returns what happened, for the log and the loop's lastSkip.
   */
  async #resumeOwnLateSuspend(dom: DomainState): Promise<string> {
    const s = dom.session;
    const d = dom.domid;
    if (s === undefined || !s.outstandingRequest) return "no request of ours outstanding";
    let what: string;
    try {
      const { leave } = await resumeCheck(this.xs, d, this.#opts.toolstackUser);
      if (leave !== undefined) what = `a late suspend of ours left alone: ${leave}`;
      else what = (await s.resumeLateSuspend()) ? "resumed a late suspend caused by our own timed-out request" : "no late suspend of ours to resume";
    } catch (err) {
      what = `resume of a late suspend of ours: ${errorText(err)}`;
    }
    this.#opts.log(`dom${d}: ${what}`);
    return what;
  }

  /**
   * Closes a domain's session under its locks (so that unsubscribing cannot undo a subscription
   * libxl made meanwhile). If libxl holds them, the close waits for the next sweep unless forced
   * (the domain is gone, or the caller replaces the session under its own hold). Locks the caller
   * holds stay held.
   */
  async #closeSession(dom: DomainState, opts: { force: boolean }): Promise<void> {
    const s = dom.session;
    if (s === undefined) return;
    const takeNow = !opts.force && !dom.locks.held;
    if (takeNow) {
      try {
        dom.locks.take();
      } catch (err) {
        if (isXenError(err, "EAGAIN")) return; // libxl has it: try again later
        if (!isXenError(err, "ESRCH")) this.#opts.log(`close session dom${dom.domid}: ${errorText(err)}`);
      }
    }
    dom.session = undefined;
    const report = await s.close({ resumeIfSuspended: false });
    const problems = [...report.problems, ...(takeNow ? dom.locks.release() : [])];
    if (problems.length > 0) this.#opts.log(`session dom${dom.domid} closed: ${problems.join("; ")}`);
  }

  #state(domid: number): DomainState {
    let dom = this.#domains.get(domid);
    if (dom === undefined) {
      dom = { domid, locks: new DomainLocks(this.xen, domid), session: undefined, requestedPath: undefined, caps: undefined, capsAt: 0, last: undefined, suspendMs: [], cycleMs: [], loop: undefined, lastUsed: Date.now(), userSuspended: false, path: undefined };
      this.#domains.set(domid, dom);
    }
    return dom;
  }

  #info(domid: number): DomainInfo {
    try {
      return this.xen.getInfo(domid);
    } catch (err) {
      if (isXenError(err, "ESRCH")) throw new DaemonError("ENODOMAIN", `no domain ${domid} (\`xl list\` shows the domains)`);
      throw err;
    }
  }

  /** Refuses a domain that is dying, shut down, already suspended (by anyone) or paused (by another tool). */
  #assertRunning(info: DomainInfo, what: string): void {
    const d = info.domid;
    switch (domainState(info)) {
      case "dying":
        throw new DaemonError("EDYING", `${what}: domain ${d} is dying (being destroyed)`);
      case "suspended":
        throw new DaemonError("ESUSPENDED", `${what}: domain ${d} is already suspended (by another tool, e.g. xl save, or an earlier suspend request)`);
      case "crashed":
      case "shutdown":
        throw new DaemonError("EDOMAIN", `${what}: domain ${d} is shut down (${shutdownReasonText(info)})`);
      case "paused":
        throw new DaemonError("EBUSY", `${what}: domain ${d} is paused (xl pause, or another tool is working on it)`);
      case "running":
        return;
    }
  }

  /**
   * Another tool at work on the domain: its request pending in control/shutdown (we leave it empty
   * between requests), or an xl/libxl-save-helper process naming it.
   */
  async #otherTool(dom: DomainState): Promise<string | undefined> {
    const domid = dom.domid;
    const v = await this.xs.tryReadString(controlShutdownKey(domid)).catch(() => undefined);
    if (v !== undefined && v !== "") return `a request from another tool is pending in control/shutdown ("${v.slice(0, 16)}")`;
    // Scanned for every guest, those with a suspend channel too. For them libxl takes the suspend
    // lock, but with a non-blocking F_SETLK: an xl started just before our cycle that reaches its
    // lock while we hold ours fails at once ("Can't fcntl F_SETLK lock file for suspend event
    // channel"). Seen by its process, it makes us skip the cycle instead, and xl gets the lock.
    this.metrics.toolstackChecks.inc({ how: "scan" });
    const p = await this.#opts.toolstackUser(domid, await this.#name(domid));
    return p === undefined ? undefined : `the toolstack is working on it: ${p}`;
  }

  /**
   * The domain's name (/local/domain/N/name), read once and kept while the daemon follows the
   * domain: the metrics' `domain` label and the toolstack scan use it. Read once so that a guest
   * able to rename itself cannot make new series at will.
   */
  async #name(domid: number): Promise<string | undefined> {
    if (!this.#names.has(domid)) this.#names.set(domid, await this.xs.tryReadString(`/local/domain/${domid}/name`).catch(() => undefined));
    return this.#names.get(domid);
  }

  /** `{domain, domid}` for the domain's series (its name as read by #name, "" if not read or none). */
  #labels(domid: number): { domain: string; domid: number } {
    return domainLabels(domid, this.#names.get(domid));
  }

  /** Takes libxl's locks of the domain for a request's work; libxl holding one is EBUSY. */
  #take(dom: DomainState, what: string): void {
    try {
      dom.locks.take();
    } catch (err) {
      if (isXenError(err, "EAGAIN")) {
        this.metrics.handovers.inc();
        throw new DaemonError("EBUSY", `${what}: domain ${dom.domid}'s suspend lock is held by another process (xl save, migrate or remus in progress?): leaving it alone`);
      }
      throw err;
    }
  }

  #release(dom: DomainState): void {
    const problems = dom.locks.release();
    if (problems.length > 0) this.#opts.log(problems.join("; "));
  }

  #park(dom: DomainState): void {
    const problems = dom.locks.park();
    if (problems.length > 0) this.#opts.log(problems.join("; "));
  }

  /** The domain's warm session (opened now if needed, with the requested path). Call with its locks held. */
  async #session(dom: DomainState, path: string | undefined): Promise<SuspendSession> {
    let s = dom.session;
    if (s !== undefined && s.state === "suspended" && !isSuspended(this.xen, dom.domid)) {
      // Resumed behind our back (xl, or `fastsuspend resume --no-daemon`): start afresh.
      await this.#closeSession(dom, { force: true });
      s = undefined;
    }
    if (s !== undefined && (s.state === "closed" || (path !== undefined && path !== s.path))) {
      await this.#closeSession(dom, { force: true });
      s = undefined;
    }
    if (s === undefined) {
      // "operation": libxl's locks, the guest's suspend channel and the subscription are ours only
      // during each piece of work, so that libxl finds them free between our cycles (xl save -c
      // failed while a loop ran, see docs/daemon.md). The locks are the domain's, held by the
      // daemon across its checks and the session's operation.
      // outstandingWaitMs 0: a request that may still be acted on is watched by the sweeper instead.
      const opts: SessionOptions = { ...this.#opts.session, hold: "operation", locks: dom.locks, outstandingWaitMs: 0 };
      if (path !== undefined) opts.path = path;
      s = new SuspendSession(this.xen, this.xs, dom.domid, opts);
      await s.open();
      dom.session = s;
      dom.path = s.path;
      dom.requestedPath = path;
      dom.caps = s.capabilities;
      dom.capsAt = Date.now();
    }
    return s;
  }

  #push(arr: number[], v: number): void {
    arr.push(v);
    if (arr.length > ROLLING_WINDOW) arr.splice(0, arr.length - ROLLING_WINDOW);
  }

  /** One handler per op, each typed with its own request and result. */
  readonly #handlers: { [O in Op]: (req: RequestOf<O>, progress: ProgressSink | undefined) => Promise<ResultOf<O>> | ResultOf<O> } = {
    suspend: (req) => this.#suspend(req),
    resume: (req) => this.#resume(req.domid),
    checkpoint: (req, progress) => this.#checkpoint(req, progress),
    "checkpoint.start": (req) => this.#checkpointStart(req),
    "checkpoint.stop": (req) => this.#checkpointStop(req.domid),
    status: (req) => (req.domid === undefined ? this.#statusAll() : this.#statusDomain(req.domid)),
    metrics: () => this.metrics.render(),
  };

  /**
   * Handles one validated request. Throws DaemonError (or anything, mapped by the server).
   * `progress` receives a `checkpoint` request's progress frames.
   */
  async handle(req: Request, opts: { progress?: ProgressSink } = {}): Promise<Result> {
    this.metrics.requests.inc({ op: req.op });
    try {
      if (this.stopping && req.op !== "status" && req.op !== "metrics") throw new DaemonError("ESHUTDOWN", "the daemon is stopping");
      if (req.op === "status" || req.op === "metrics") {
        // Read-only: after the time-critical work in flight (see gate.ts).
        const how = await this.gate.wait();
        if (how !== "free") this.metrics.requestsHeld.inc({ released: how });
      }
      const handler = this.#handlers[req.op] as (r: Request, p: ProgressSink | undefined) => Promise<Result> | Result;
      return await handler(req, opts.progress);
    } catch (err) {
      const e = toDaemonError(err);
      this.metrics.requestErrors.inc({ op: req.op, code: e.code });
      throw e;
    }
  }

  async #suspend(req: SuspendRequest): Promise<SuspendReply> {
    const d = req.domid;
    this.#info(d);
    await this.#name(d); // before its first work: the domain's series carry its name from the start
    const dom = this.#state(d);
    if (dom.loop?.running === true) throw new DaemonError("EBUSY", `suspend: a checkpoint loop is running on domain ${d}: stop it first (checkpoint.stop)`);
    return this.#queue.run(d, () => this.gate.critical(async () => {
      // checkpoint.start queued before us may have started a loop meanwhile: it owns the domain.
      if (this.#loopRunning(dom)) throw new DaemonError("EBUSY", `suspend: a checkpoint loop is running on domain ${d}: stop it first (checkpoint.stop)`);
      dom.lastUsed = Date.now();
      this.#take(dom, "suspend");
      try {
        this.#assertRunning(this.#info(d), "suspend");
        const other = await this.#otherTool(dom);
        if (other !== undefined) throw new DaemonError("EBUSY", `suspend: domain ${d}: ${other}`);
        const s = await this.#session(dom, req.path ?? dom.requestedPath);
        this.journal.add(d, "suspend");
        try {
          const r = await s.suspend(req.timeoutMs === undefined ? {} : { timeoutMs: req.timeoutMs });
          dom.userSuspended = true;
          this.metrics.suspendSeconds.observe({ path: r.path }, r.suspendMs / 1000);
          this.#push(dom.suspendMs, r.suspendMs);
          dom.last = { op: "suspend", at: new Date().toISOString(), path: r.path, timings: { triggerMs: r.triggerMs, awaitMs: r.awaitMs, confirmMs: r.confirmMs, suspendMs: r.suspendMs } };
          return { domid: d, ...r };
        } finally {
          // Suspended as asked (the client owns that now), or left running on failure.
          this.journal.remove(d, "suspend");
        }
      } finally {
        this.#release(dom);
        dom.lastUsed = Date.now();
      }
    }));
  }

  async #resume(d: number): Promise<ResumeReply> {
    this.#info(d);
    await this.#name(d); // before its first work: the domain's series carry its name from the start
    const dom = this.#state(d);
    if (dom.loop?.running === true) throw new DaemonError("EBUSY", `resume: a checkpoint loop is running on domain ${d} (it resumes the domain itself)`);
    return this.#queue.run(d, () => this.gate.critical(async () => {
      dom.lastUsed = Date.now();
      const info = this.#info(d);
      if (domainState(info) !== "suspended") throw new DaemonError("ENOTSUSPENDED", `domain ${d} is not suspended: nothing to resume`);
      let r: { resumeMs: number; xsResumeMs: number };
      let path: string | null = null;
      const s = dom.session;
      // With or without a session: not a domain xl may be copying (its lock held, or its process
      // seen with no request of its own pending): resuming it would split it (see resumeCheck).
      this.#take(dom, "resume");
      try {
        const { leave } = await resumeCheck(this.xs, d, this.#opts.toolstackUser);
        if (leave !== undefined) throw new DaemonError("EBUSY", `resume: domain ${d}: ${leave}: leaving it alone`);
        if (s?.state === "suspended") {
          r = await s.resume();
          path = s.path ?? null;
        } else {
          // Suspended by someone else (or before we started): resume it as `xl` would, no session.
          r = await resumeSuspended(this.xen, this.xs, d, { fast: true });
        }
      } finally {
        this.#release(dom);
      }
      dom.userSuspended = false;
      this.metrics.resumeSeconds.observe({ path: path ?? "none" }, (r.resumeMs + r.xsResumeMs) / 1000);
      dom.last = { op: "resume", at: new Date().toISOString(), path, timings: { resumeMs: r.resumeMs, xsResumeMs: r.xsResumeMs } };
      dom.lastUsed = Date.now();
      return { domid: d, ...r };
    }));
  }

  async #checkpointStart(req: CheckpointStartRequest): Promise<CheckpointStartReply> {
    const loop = await this.#startLoop(req);
    return { domid: req.domid, started: true, path: loop.path, intervalMs: loop.intervalMs, count: loop.count };
  }

  /**
   * A loop run on this request: a progress frame once it is set up and every `progressMs` after
   * (cumulative counts, so the server may drop one for a client that does not read), then the
   * loop's summary when it ends. The loop does not depend on the connection: `checkpoint.stop` (on
   * any connection) or the daemon's stop ends it.
   */
  async #checkpoint(req: CheckpointRequest, progress: ProgressSink | undefined): Promise<LoopReply> {
    const loop = await this.#startLoop(req);
    const send = (): void => {
      progress?.(this.#progressOf(req.domid, loop));
    };
    send();
    const timer = progress === undefined ? undefined : setInterval(send, req.progressMs ?? DEFAULT_PROGRESS_MS);
    try {
      await loop.finished;
    } finally {
      clearInterval(timer);
    }
    return { domid: req.domid, loop: this.#loopStatus(loop) };
  }

  #progressOf(domid: number, loop: Loop): CheckpointProgress {
    return { domid, ...this.#loopCounts(loop) };
  }

  /**
   * Sets up (or reuses) the session now, so that no path / a held lock is this request's error, and
   * starts the loop. The loop is in place before the queued set-up ends: a request queued behind it
   * (suspend) sees it.
   */
  async #startLoop(req: CheckpointStartRequest | CheckpointRequest): Promise<Loop> {
    const d = req.domid;
    this.#info(d);
    await this.#name(d); // before its first work: the domain's series carry its name from the start
    const dom = this.#state(d);
    if (dom.loop?.running === true) throw new DaemonError("EBUSY", `${req.op}: a checkpoint loop already runs on domain ${d} (checkpoint.stop first)`);
    return this.#queue.run(d, async () => {
      let path: string | undefined;
      this.#take(dom, req.op);
      try {
        this.#assertRunning(this.#info(d), req.op);
        path = (await this.#session(dom, req.path ?? dom.requestedPath)).path;
      } finally {
        this.#release(dom);
      }
      if (this.#loopRunning(dom)) throw new DaemonError("EBUSY", `${req.op}: a checkpoint loop already runs on domain ${d}`);
      return this.#newLoop(dom, req, path);
    });
  }

  #newLoop(dom: DomainState, req: CheckpointStartRequest | CheckpointRequest, path: string | undefined): Loop {
    const d = dom.domid;
    const stop = new AbortController();
    const loop: Loop = {
      timeoutMs: req.timeoutMs,
      running: true,
      intervalMs: req.intervalMs,
      count: req.count ?? null,
      path: path ?? null,
      startedAt: new Date().toISOString(),
      lastError: null,
      lastSkip: null,
      stoppedBy: null,
      stop,
      finished: Promise.resolve(),
      runner: new CheckpointRunner({
        intervalMs: req.intervalMs,
        ...(req.count === undefined ? {} : { count: req.count }),
        signal: stop.signal,
        failureBudget: MAX_CONSECUTIVE_FAILURES,
        keepSamples: ROLLING_WINDOW,
        // Each attempt, its checks included, in the domain's queue and as time-critical work.
        around: (attempt) => this.#queue.run(d, () => this.gate.critical(attempt)),
        before: () => this.#beforeCycle(dom, loop),
        cycle: () => this.#cycle(dom, loop),
        after: (o) => { this.#afterCycle(dom, loop, o); },
        gap: () => this.#gap(dom, loop),
        onCycle: (o) => { this.#onCycle(dom, loop, o); },
      }),
    };
    dom.loop = loop;
    // Journalled per cycle (#cycle), not for the loop's life.
    loop.finished = this.#runLoop(dom, loop);
    return loop;
  }

  async #runLoop(dom: DomainState, loop: Loop): Promise<void> {
    const d = dom.domid;
    try {
      const { stoppedBy } = await loop.runner.run();
      // A stop request, the daemon's stop and a domain found gone set their own reason first.
      loop.stoppedBy ??= stoppedBy === "gone" ? "domain-gone" : stoppedBy === "signal" ? "request" : stoppedBy;
    } catch (err) {
      loop.lastError = errorText(err);
      loop.stoppedBy = "error";
    } finally {
      // The userdata lock kept across the gaps goes with the loop (in the queue: never under a
      // request that has the domain active).
      await this.#queue.run(d, () => {
        this.#release(dom);
      }).catch((err: unknown) => {
        this.#opts.log(`checkpoint dom${d}: letting go of its locks: ${errorText(err)}`);
      });
      loop.running = false;
      dom.lastUsed = Date.now();
    }
  }

  /**
   * The wait between two cycles, parked on libxl's userdata lock (DomainLocks). An xl that starts
   * now queues on that lock to read the domain's configuration; seen there, it gets the domain at
   * once, and the loop cools down until xl is done with it.
   */
  async #gap(dom: DomainState, loop: Loop): Promise<void> {
    const end = Date.now() + loop.intervalMs;
    for (;;) {
      // Looked at again in the queue: a request served meanwhile may have let go of the lock.
      if (dom.locks.toolstackWaiting()) {
        await this.#queue.run(dom.domid, () => {
          if (dom.locks.toolstackWaiting()) this.#handOver(dom, loop);
        });
      }
      const left = end - Date.now();
      if (left <= 0 || loop.stop.signal.aborted) return;
      await sleep(Math.min(left, HANDOVER_POLL_MS), loop.stop.signal);
    }
  }

  /** libxl is queued on the userdata lock we hold (the caller has just seen it): let go of everything, and cool down. */
  #handOver(dom: DomainState, loop: Loop): void {
    this.#release(dom);
    const why = "libxl queued on the domain's userdata lock (xl save, migrate, remus?): handed over";
    dom.otherTool = { at: Date.now(), why };
    loop.lastSkip = why;
    this.metrics.handovers.inc();
    this.#opts.log(`checkpoint dom${dom.domid}: ${why}`);
  }

  /**
   * Whether the next cycle may run: not while another tool has the domain (its locks, its process,
   * its request, a suspend of its own) or had it moments ago. Takes libxl's locks when it may.
   */
  async #beforeCycle(dom: DomainState, loop: Loop): Promise<CycleVerdict> {
    const d = dom.domid;
    const otherTool = (why: string): CycleVerdict => {
      dom.otherTool = { at: Date.now(), why };
      return { skip: why };
    };
    // Another tool had the domain moments ago: it may come back at once (xl save run twice in a
    // row), and an xl that meets one of our cycles fails at its non-blocking suspend lock.
    const seen = dom.otherTool;
    const since = seen === undefined ? undefined : Date.now() - seen.at;
    if (seen !== undefined && since !== undefined && since < this.#opts.toolstackCooldownMs) {
      // libxl still holding its userdata lock (xl reading the configuration) starts it again.
      let busy: boolean;
      try {
        busy = dom.locks.toolstackBusy();
      } catch (err) {
        if (isXenError(err, "ESRCH")) return { gone: errorText(err) };
        busy = true;
      }
      if (busy) return otherTool("libxl holds the domain's userdata lock (xl reading its configuration?)");
      return { skip: `cooling down: another tool had the domain ${since} ms ago (${seen.why})` };
    }
    if (dom.locks.toolstackWaiting()) {
      this.#handOver(dom, loop);
      return { skip: loop.lastSkip ?? "handed over" };
    }
    try {
      // The locks only: the subscription would take a suspend that xl is waiting for while we look.
      dom.locks.take();
    } catch (err) {
      if (isXenError(err, "EAGAIN")) {
        const which = err.call.startsWith("flock") ? "libxl's userdata lock" : "the suspend lock";
        return otherTool(`${which} held by another process (xl save/migrate/remus?)`);
      }
      if (isXenError(err, "ESRCH")) return { gone: errorText(err) };
      throw err;
    }
    let info: DomainInfo;
    try {
      info = this.xen.getInfo(d);
    } catch (err) {
      if (isXenError(err, "ESRCH")) return { gone: errorText(err) };
      throw err;
    }
    const state = domainState(info);
    if (state === "dying" || state === "crashed" || state === "shutdown") return { gone: `domain ${d} is ${state}` };
    if (state === "suspended") {
      // Suspended with a timed-out request of ours outstanding (an event on the guest's channel
      // cannot be taken back, and a slow freezer may act on it seconds later): ours to resume.
      if (dom.session?.outstandingRequest === true) return { skip: await this.#resumeOwnLateSuspend(dom) };
      return otherTool("domain suspended by another tool (xl save -c?)");
    }
    if (state === "paused") return otherTool("domain paused by another tool");
    // xl save of a guest without a suspend channel takes no lock: its request in control/shutdown
    // is the only sign. Triggering now would take its suspend from it.
    const other = await this.#otherTool(dom);
    if (other !== undefined) return otherTool(other);
    return { run: true };
  }

  /**
   * One cycle, under the locks #beforeCycle took: warm session, journal, cycle. The session binds
   * and subscribes right before its trigger and lets go of both once the guest is suspended.
   */
  async #cycle(dom: DomainState, loop: Loop): Promise<CycleTimings> {
    const d = dom.domid;
    try {
      const s = await this.#session(dom, dom.requestedPath);
      // Journalled right before the trigger, until the guest is resumed: a crash in between leaves
      // the domain to the next start's recovery. Kept when a failed cycle leaves it suspended.
      this.journal.add(d, "checkpoint");
      let t: CycleTimings;
      try {
        t = await s.cycle(undefined, loop.timeoutMs === undefined ? {} : { timeoutMs: loop.timeoutMs });
      } catch (err) {
        if (!this.#suspendedNow(d)) this.journal.remove(d, "checkpoint");
        throw err;
      }
      this.journal.remove(d, "checkpoint");
      return t;
    } catch (err) {
      // A broken session is rebuilt on the next cycle.
      if (!loop.stop.signal.aborted && !isDomainEnded(err) && dom.session !== undefined && dom.session.state !== "open") await this.#closeSession(dom, { force: true });
      throw err;
    }
  }

  /** After each attempt: a cycle that went well keeps libxl's userdata lock across the gap (see #gap). */
  #afterCycle(dom: DomainState, loop: Loop, o: CycleOutcome): void {
    if (o.result !== "ok" || loop.stop.signal.aborted) this.#release(dom);
    else if (dom.locks.toolstackWaiting()) this.#handOver(dom, loop);
    else this.#park(dom);
  }

  /** The loop's status, metrics and log, per attempt. */
  #onCycle(dom: DomainState, loop: Loop, o: CycleOutcome): void {
    const d = dom.domid;
    switch (o.result) {
      case "ok": {
        const t = o.timings;
        loop.path = t.path;
        this.metrics.cycles.inc({ ...this.#labels(d), result: "ok" });
        this.metrics.suspendSeconds.observe({ path: t.path }, t.suspendMs / 1000);
        this.metrics.resumeSeconds.observe({ path: t.path }, (t.resumeMs + t.xsResumeMs) / 1000);
        this.metrics.cycleSeconds.observe({ path: t.path }, t.totalMs / 1000);
        this.#push(dom.suspendMs, t.suspendMs);
        this.#push(dom.cycleMs, t.totalMs);
        const { path, ...timings } = t;
        dom.last = { op: "cycle", at: new Date().toISOString(), path, timings };
        return;
      }
      case "failed":
        loop.lastError = errorText(o.error);
        this.metrics.cycles.inc({ ...this.#labels(d), result: "failed" });
        this.metrics.cycleFailures.inc({ ...this.#labels(d), reason: failureReason(o.error) });
        this.#opts.log(`checkpoint dom${d}: ${loop.lastError}`);
        return;
      case "skipped":
        loop.lastSkip = o.why;
        this.metrics.cycles.inc({ ...this.#labels(d), result: "skipped" });
        this.metrics.handovers.inc();
        return;
      case "gone":
        loop.stoppedBy ??= "domain-gone";
        return;
      case "interrupted":
        return;
    }
  }

  #suspendedNow(domid: number): boolean {
    try {
      return isSuspended(this.xen, domid);
    } catch {
      return false;
    }
  }

  #loopCounts(loop: Loop): Omit<LoopStatus, "cycleMs" | "suspendMs"> {
    const { done, ok, failed, skipped } = loop.runner.counts;
    return {
      running: loop.running, intervalMs: loop.intervalMs, count: loop.count, path: loop.path, startedAt: loop.startedAt,
      done, ok, failed, skipped, lastError: loop.lastError, lastSkip: loop.lastSkip, stoppedBy: loop.stoppedBy,
    };
  }

  #loopStatus(loop: Loop): LoopStatus {
    const { totalMs, suspendMs } = loop.runner.summary();
    return { ...this.#loopCounts(loop), cycleMs: totalMs, suspendMs };
  }

  async #checkpointStop(d: number): Promise<LoopReply> {
    const dom = this.#domains.get(d);
    const loop = dom?.loop;
    if (dom === undefined || loop === undefined || !loop.running) {
      this.#info(d);
      throw new DaemonError("ENOLOOP", `no checkpoint loop is running on domain ${d}`);
    }
    loop.stoppedBy = "request";
    loop.stop.abort(); // the cycle in flight completes (see #stop)
    await loop.finished;
    return { domid: d, loop: this.#loopStatus(loop) };
  }

  #rolling(dom: DomainState): { suspendMs: Summary; cycleMs: Summary } {
    return { suspendMs: summarize(dom.suspendMs), cycleMs: summarize(dom.cycleMs) };
  }

  #statusAll(): DaemonStatus {
    let infos: DomainInfo[];
    try {
      infos = this.xen.listDomains().filter((i) => i.domid !== 0);
    } catch {
      infos = [...this.#known.values()];
    }
    const domains = infos.map((info) => {
      const dom = this.#domains.get(info.domid);
      return {
        domid: info.domid,
        state: domainStateText(info),
        session: dom?.session === undefined ? null : { state: dom.session.state, path: dom.session.path ?? null },
        loop: dom?.loop === undefined ? null : this.#loopStatus(dom.loop),
        last: dom?.last ?? null,
      };
    });
    return {
      daemon: { pid: process.pid, uptimeS: Math.round((Date.now() - this.startedAt) / 1000), clients: this.clients(), journal: this.journal.entries(), stopping: this.stopping },
      domains,
    };
  }

  async #statusDomain(d: number): Promise<DomainStatus> {
    const info = this.#info(d);
    const dom = this.#domains.get(d);
    let caps = dom?.session?.capabilities ?? dom?.caps;
    if (caps === undefined || (dom?.session === undefined && Date.now() - (dom?.capsAt ?? 0) > CAPS_TTL_MS)) {
      // Not in a session: detect under the domain's queue (it binds the guest's port briefly).
      const st = this.#state(d);
      caps = await this.#queue.run(d, () => detect(this.xen, this.xs, d));
      st.caps = caps;
      st.capsAt = Date.now();
    }
    let chosen: string;
    try {
      chosen = choosePath(caps, dom?.requestedPath);
    } catch (err) {
      chosen = `none (${errorText(err)})`;
    }
    const cur = this.#domains.get(d);
    return {
      domid: d,
      state: domainStateText(info),
      capabilities: caps,
      chosen,
      pathsInUse: cur?.session?.path === undefined ? [] : [cur.session.path],
      session: cur?.session === undefined ? null : { state: cur.session.state, path: cur.session.path ?? null, lockHeldNow: cur.locks.held },
      last: cur?.last ?? null,
      rolling: cur === undefined ? this.#rolling(this.#state(d)) : this.#rolling(cur),
      loop: cur?.loop === undefined ? null : this.#loopStatus(cur.loop),
      queued: this.#queue.depth(d),
      journalled: this.journal.has(d),
    };
  }

  /**
   * Stops everything: loops (each guest left running), sessions closed, journalled domains still
   * suspended resumed, watches closed. A domain suspended by a `suspend` request stays suspended.
   */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    this.gate.releaseAll();
    this.lag.stop();
    this.metrics.stop();
    if (this.#sweeper !== undefined) clearInterval(this.#sweeper);
    if (this.#refreshTimer !== undefined) clearTimeout(this.#refreshTimer);
    const doms = [...this.#domains.values()];
    // No new cycle starts; the one in flight finishes normally (suspend then resume: tens of ms on
    // hardware). Interrupting it right after the trigger would cost more: the guest may have taken
    // the request, and the coordinator then gives it up to lateSuspendGraceMs to suspend before
    // resuming it. main.ts exits at a deadline anyway, leaving the journal for the next start.
    for (const dom of doms) {
      if (dom.loop?.running === true) {
        dom.loop.stoppedBy = "shutdown";
        dom.loop.stop.abort();
      }
    }
    await Promise.all(doms.map((d) => d.loop?.finished ?? Promise.resolve()));
    for (const dom of doms) {
      await this.#closeSession(dom, { force: true });
      this.#release(dom);
    }
    for (const d of this.journal.domids()) {
      // The checks recovery makes (another process's lock, an xl process that may be copying it).
      // Left alone, the entry stays for the next start to check again.
      let lock;
      try {
        if (!isSuspended(this.xen, d)) {
          this.journal.remove(d);
          continue;
        }
        lock = this.xen.lockSuspend(d);
        const { leave } = await resumeCheck(this.xs, d, this.#opts.toolstackUser);
        if (leave !== undefined) {
          this.#opts.log(`stop: domain ${d} left alone, suspended: ${leave}`);
          continue;
        }
        await resumeSuspended(this.xen, this.xs, d, { fast: true });
        this.journal.remove(d);
      } catch (err) {
        this.#opts.log(`resume dom${d} on stop: ${errorText(err)}${isXenError(err, "EAGAIN") ? " (another process holds its suspend lock: left alone)" : ""}`);
        if (isXenError(err, "ESRCH")) this.journal.remove(d);
      } finally {
        lock?.release();
      }
    }
    await Promise.all(this.#watches.map((w) => w.close().catch(() => undefined)));
  }
}

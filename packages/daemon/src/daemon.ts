// fastsuspendd's state and operations, independent of the socket: the parts wired together and
// each request handed to its part. The parts: domains.ts (which domains exist, what is kept per
// domain), sessions.ts (one warm session per domain, libxl's locks around each piece of work),
// sweeper.ts (idle sessions, late suspends), suspend-resume.ts, loops.ts and loop-attempt.ts
// (checkpoint loops beside libxl), status.ts; the journal, the metrics, the request gate and the
// per-domain queue that serialises each domain's work. Here also: stop, which ends the loops
// (guests running), closes the sessions and resumes what the journal says we left suspended.
import { errorText, isSuspended, resumeSuspended, type SessionOptions, type XenstoreLike } from "@fastsuspend/coordinator";
import { isXenError, type XenBinding } from "@fastsuspend/xen";

import type { DaemonContext } from "./context";
import { DaemonMetrics } from "./daemon-metrics";
import { Domains, type DomainState } from "./domains";
import { CriticalGate } from "./gate";
import { resumeCheck, type Journal, type ToolstackUser } from "./journal";
import { KeptLoops } from "./kept-loops";
import { EventLoopLag } from "./loop-lag";
import { LoopStore } from "./loop-store";
import { Loops, type ProgressSink } from "./loops";
import { DaemonError, type LoopStatus, type Op, type Request, type RequestOf, type Result, type ResultOf } from "./protocol";
import { KeyedQueue } from "./queue";
import { Sessions } from "./sessions";
import { StatusView } from "./status";
import { SuspendResume } from "./suspend-resume";
import { IdleSweeper } from "./sweeper";
import { toDaemonError } from "./to-daemon-error";
import { ToolstackScanner } from "./toolstack";

export interface DaemonOptions {
  xen: XenBinding;
  xs: XenstoreLike;
  journal: Journal;
  /** The loops to start again at start and to keep at stop (default: in memory only). */
  loopStore?: LoopStore;
  /** Close a domain's session after this long without use (default 60 s). */
  idleMs?: number;
  /** Session defaults (fallback, xsResume...); a request's path overrides `path`. */
  session?: SessionOptions;
  log?: (line: string) => void;
  /**
   * Whether the toolstack (xl save/migrate/remus) works on the domain now (default: a /proc scan,
   * see toolstack.ts); tests pass their own. The userdata lock (DomainLocks) does the rest.
   */
  toolstackUser?: ToolstackUser;
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
  /** A kept loop that cannot start yet (xl has the domain, it is paused) is tried again (default every 5 s for 120 s). */
  keptLoopRetry?: { everyMs: number; forMs: number };
}

export class Daemon {
  readonly xen: XenBinding;
  readonly xs: XenstoreLike;
  readonly journal: Journal;
  readonly loopStore: LoopStore;
  readonly startedAt = Date.now();
  readonly lag = new EventLoopLag();
  readonly metrics: DaemonMetrics;
  /** Time-critical work first: status and metrics wait for it (bounded). */
  readonly gate: CriticalGate;
  readonly scanner = new ToolstackScanner();
  readonly #goneSeriesMs: number;
  readonly #ctx: DaemonContext;
  readonly #domains: Domains;
  readonly #sessions: Sessions;
  readonly #sweeper: IdleSweeper;
  readonly #loops: Loops;
  readonly #kept: KeptLoops;
  readonly #requests: SuspendResume;
  readonly #status: StatusView;
  #stopping: Promise<void> | undefined;
  /** Set by the server: connected clients, for the gauge. */
  clients = (): number => 0;

  constructor(opts: DaemonOptions) {
    this.xen = opts.xen;
    this.xs = opts.xs;
    this.journal = opts.journal;
    this.loopStore = opts.loopStore ?? new LoopStore();
    this.gate = new CriticalGate(opts.maxRequestHoldMs ?? 500);
    this.#goneSeriesMs = opts.goneSeriesMs ?? 300_000;
    const log = opts.log ?? (() => undefined);
    this.#domains = new Domains(this.xen, this.xs, log, (dom) => void this.#dropDomain(dom, "domain-gone"));
    const domains = this.#domains;
    this.metrics = new DaemonMetrics({
      domains: () => domains.all().map((d) => ({
        domid: d.domid,
        name: domains.nameRead(d.domid),
        path: d.path,
        caps: d.session?.capabilities ?? d.caps,
        requestedPath: d.requestedPath,
        loop: d.loop?.running === true ? { intervalMs: d.loop.intervalMs, done: d.loop.runner.counts.done } : undefined,
      })),
      sessionsOpen: () => domains.all().filter((d) => d.session !== undefined).length,
      domainsFollowed: () => domains.followed,
      clients: () => this.clients(),
    }, this.lag);
    this.#ctx = {
      xen: this.xen,
      xs: this.xs,
      journal: this.journal,
      loopStore: this.loopStore,
      metrics: this.metrics,
      gate: this.gate,
      queue: new KeyedQueue<number>(),
      domains,
      settings: {
        idleMs: opts.idleMs ?? 60_000,
        session: opts.session ?? {},
        toolstackUser: opts.toolstackUser ?? ((domid, name) => this.scanner.user(domid, name)),
        toolstackCooldownMs: opts.toolstackCooldownMs ?? 2000,
        keptLoopRetry: opts.keptLoopRetry ?? { everyMs: 5_000, forMs: 120_000 },
      },
      log,
    };
    this.#sessions = new Sessions(this.#ctx);
    this.#sweeper = new IdleSweeper(this.#ctx, this.#sessions);
    this.#loops = new Loops(this.#ctx, this.#sessions);
    this.#kept = new KeptLoops(this.#ctx, this.#loops);
    this.#requests = new SuspendResume(this.#ctx, this.#sessions);
    this.#status = new StatusView(this.#ctx, { startedAt: this.startedAt, clients: () => this.clients(), stopping: () => this.stopping });
  }

  get stopping(): boolean {
    return this.#stopping !== undefined;
  }

  /** Lists the domains and watches @introduceDomain/@releaseDomain; starts the idle sweeper. */
  async start(): Promise<void> {
    this.lag.start();
    await this.#domains.follow();
    this.#sweeper.start();
  }

  /**
   * Starts again the loops a previous daemon kept (a restart, a package upgrade): once the daemon
   * serves and can be stopped in order (main.ts), not inside start(). Resolves when each has
   * started, been dropped, or is waiting for a retry.
   */
  restartKeptLoops(): Promise<void> {
    return this.stopping ? Promise.resolve() : this.#kept.restartAll();
  }

  /** A domain gone or dying: its loop stopped, its session closed, its locks and journal entries dropped. */
  async #dropDomain(dom: DomainState, why: LoopStatus["stoppedBy"]): Promise<void> {
    if (!this.#domains.forget(dom)) return;
    this.metrics.forgetDomain(dom.domid, this.#goneSeriesMs);
    if (dom.loop?.running === true) {
      dom.loop.stoppedBy = why;
      dom.loop.stop.abort();
    }
    dom.session?.interrupt();
    await dom.loop?.finished;
    await this.#sessions.close(dom, { force: true });
    this.#sessions.release(dom);
    this.journal.remove(dom.domid);
  }

  /** One handler per op, each typed with its own request and result. */
  readonly #handlers: { [O in Op]: (req: RequestOf<O>, progress: ProgressSink | undefined) => Promise<ResultOf<O>> | ResultOf<O> } = {
    suspend: (req) => this.#requests.suspend(req),
    resume: (req) => this.#requests.resume(req.domid),
    checkpoint: (req, progress) => this.#loops.run(req, progress),
    "checkpoint.start": async (req) => {
      const reply = await this.#loops.start(req);
      this.#kept.startedByClient(req.domid);
      return reply;
    },
    "checkpoint.stop": async (req) => (await this.#kept.stopWaiting(req.domid)) ?? this.#loops.stop(req.domid),
    status: (req) => (req.domid === undefined ? this.#status.all() : this.#status.domain(req.domid)),
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
    this.#sweeper.stop();
    this.#domains.stopFollowing();
    this.#kept.beginQuiesce();
    await this.#stopLoops();
    // A kept loop being started again is let finish its set-up (bounded by the session's
    // timeouts), then stopped like the others; none is retried after.
    await this.#kept.settled();
    await this.#stopLoops();
    const doms = this.#domains.all();
    for (const dom of doms) {
      await this.#sessions.close(dom, { force: true });
      this.#sessions.release(dom);
    }
    await this.#resumeJournalled();
    await this.#domains.unfollow();
  }

  /**
   * Ends every running loop: no new cycle starts; the one in flight finishes normally (suspend then
   * resume: tens of ms on hardware). Interrupting it right after the trigger would cost more: the
   * guest may have taken the request, and the coordinator then gives it up to lateSuspendGraceMs
   * to suspend before resuming it. main.ts exits at a deadline anyway, leaving the journal for the
   * next start.
   */
  async #stopLoops(): Promise<void> {
    const doms = this.#domains.all();
    for (const dom of doms) {
      if (dom.loop?.running === true) {
        // A loop already ending for a reason of its own (a stop request, its count) keeps that
        // reason: only a loop the daemon's stop ends is kept for the next start.
        dom.loop.stoppedBy ??= "shutdown";
        dom.loop.stop.abort();
      }
    }
    await Promise.all(doms.map((d) => d.loop?.finished ?? Promise.resolve()));
  }

  /**
   * On stop, the journalled domains still suspended (a cycle of ours cut short) are resumed, with
   * the checks recovery makes (another process's lock, an xl process that may be copying it). Left
   * alone, the entry stays for the next start to check again.
   */
  async #resumeJournalled(): Promise<void> {
    const { log, settings } = this.#ctx;
    for (const d of this.journal.domids()) {
      let lock;
      try {
        if (!isSuspended(this.xen, d)) {
          this.journal.remove(d);
          continue;
        }
        lock = this.xen.lockSuspend(d);
        const { leave } = await resumeCheck(this.xs, d, settings.toolstackUser);
        if (leave !== undefined) {
          log(`stop: domain ${d} left alone, suspended: ${leave}`);
          continue;
        }
        await resumeSuspended(this.xen, this.xs, d, { fast: true });
        this.journal.remove(d);
      } catch (err) {
        log(`resume dom${d} on stop: ${errorText(err)}${isXenError(err, "EAGAIN") ? " (another process holds its suspend lock: left alone)" : ""}`);
        if (isXenError(err, "ESRCH")) this.journal.remove(d);
      } finally {
        lock?.release();
      }
    }
  }
}

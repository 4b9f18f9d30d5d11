// fastsuspendd's checkpoint loops: one per domain at most, started by `checkpoint.start` (answered
// once the loop is set up) or `checkpoint` (progress frames, then the loop's summary when it ends),
// ended by its count, `checkpoint.stop`, the daemon's stop, the domain going away, or 10 failed
// cycles in a row. Each loop is the coordinator's CheckpointRunner driven by loop-attempt.ts's
// hooks; its counts and latency summary are the runner's.
import { CheckpointRunner, errorText } from "@fastsuspend/coordinator";

import type { DaemonContext } from "./context";
import { assertRunning } from "./domain-checks";
import { loopRunning, ROLLING_WINDOW, type DomainState, type Loop } from "./domains";
import { LoopAttempts, type LoopState } from "./loop-attempt";
import {
  DaemonError,
  DEFAULT_PROGRESS_MS,
  type CheckpointProgress,
  type CheckpointRequest,
  type CheckpointStartReply,
  type CheckpointStartRequest,
  type LoopReply,
  type LoopStatus,
} from "./protocol";
import type { Sessions } from "./sessions";
import type { StoredLoop } from "./loop-store";
import { toDaemonError } from "./to-daemon-error";

/** Where a `checkpoint` request's progress frames go (the server writes them to the connection). */
export type ProgressSink = (p: CheckpointProgress) => void;

/** A loop stops after this many failed cycles in a row. */
const MAX_CONSECUTIVE_FAILURES = 10;

/** Restarts of a kept loop closer together than this count as a crash loop. */
const QUICK_RESTART_MS = 60_000;
/** A kept loop is dropped after this many quick restarts in a row. */
const MAX_QUICK_RESTARTS = 5;
/** Why a kept loop is not tried again: its domain is gone, shut down or dom0, or its entry is bad. */
const FINAL_RESTART_ERRORS = new Set<string>(["ENODOMAIN", "EDYING", "EDOMAIN", "ECONTROLDOMAIN", "EINVAL"]);

/** A loop's counts, as status and progress frames show them. */
export function loopCounts(loop: Loop): Omit<LoopStatus, "cycleMs" | "suspendMs"> {
  const { done, ok, failed, skipped } = loop.runner.counts;
  return {
    running: loop.running, intervalMs: loop.intervalMs, count: loop.count, path: loop.path, startedAt: loop.startedAt,
    done, ok, failed, skipped, lastError: loop.lastError, lastSkip: loop.lastSkip, stoppedBy: loop.stoppedBy,
  };
}

/** A loop's counts and its own latency summary (its last ROLLING_WINDOW cycles). */
export function loopStatus(loop: Loop): LoopStatus {
  const { totalMs, suspendMs } = loop.runner.summary();
  return { ...loopCounts(loop), cycleMs: totalMs, suspendMs };
}

export class Loops {
  readonly #ctx: DaemonContext;
  readonly #sessions: Sessions;
  /** Kept loops waiting to be tried again (restartKept), by domid. */
  readonly #retries = new Map<number, NodeJS.Timeout>();
  readonly #restarting = new Set<Promise<void>>();
  #stopping = false;

  constructor(ctx: DaemonContext, sessions: Sessions) {
    this.#ctx = ctx;
    this.#sessions = sessions;
  }

  /**
   * A loop that is kept for the next daemon until it ends for a reason of its own (#run). `kept`:
   * the stored entry it restarts (its begin time and restart count carry over).
   */
  async start(req: CheckpointStartRequest, kept?: StoredLoop): Promise<CheckpointStartReply> {
    this.#cancelRetry(req.domid);
    const loop = await this.#startLoop(req);
    const name = this.#ctx.domains.nameRead(req.domid);
    if (name !== undefined && name !== "") {
      loop.kept = true;
      this.#ctx.loopStore.set({
        domid: req.domid, name, intervalMs: req.intervalMs, since: kept?.since ?? loop.startedAt,
        ...(req.count === undefined ? {} : { count: req.count }), ...(req.path === undefined ? {} : { path: req.path }), ...(req.timeoutMs === undefined ? {} : { timeoutMs: req.timeoutMs }),
        ...(kept?.restarts === undefined ? {} : { restarts: kept.restarts, restartedAt: kept.restartedAt }),
      });
    } else {
      // Without a name a restarted daemon could not tell the domain from a new one with its domid.
      this.#ctx.log(`checkpoint dom${req.domid}: the domain has no name in xenstore: its loop is not kept across a daemon restart`);
    }
    return { domid: req.domid, started: true, path: loop.path, intervalMs: loop.intervalMs, count: loop.count };
  }

  /**
   * The loops a previous daemon kept (loop-store.ts), started again, all at once, on the domains
   * that still have the same name; the others are dropped. Called once the daemon serves and its
   * signal handlers are in place (main.ts), so that a stop during a restart is an orderly one.
   */
  async restartKept(): Promise<void> {
    await Promise.all(this.#ctx.loopStore.list().map((k) => this.#tracked(k, Date.now())));
  }

  /** Waits for the restarts in flight and cancels the retries to come (the daemon's stop). */
  async quiesceRestarts(): Promise<void> {
    this.#stopping = true;
    for (const d of [...this.#retries.keys()]) this.#cancelRetry(d);
    await Promise.all([...this.#restarting]);
  }

  #quiescing(): boolean {
    return this.#stopping;
  }

  /** One kept loop's restart, awaited by quiesceRestarts. */
  #tracked(k: StoredLoop, firstTry: number): Promise<void> {
    const attempt = this.#restartOne(k, firstTry);
    this.#restarting.add(attempt);
    return attempt.finally(() => this.#restarting.delete(attempt));
  }

  async #restartOne(k: StoredLoop, firstTry: number): Promise<void> {
    if (this.#stopping) return;
    const { loopStore, domains, log } = this.#ctx;
    const now = Date.now();
    const name = await domains.name(k.domid);
    if (this.#quiescing()) return; // the daemon began to stop while the name was read
    if (name !== k.name) {
      log(`checkpoint dom${k.domid}: not restarted: the loop was on "${k.name}", the domain is ${name === undefined ? "gone" : `now "${name}"`}`);
      loopStore.remove(k.domid);
      return;
    }
    // A daemon that dies soon after each start (a fault its cycles trigger) would be restarted by
    // systemd into the same loop until its start limit: after a few quick restarts the loop is dropped.
    const quick = k.restartedAt !== undefined && now - Date.parse(k.restartedAt) < QUICK_RESTART_MS;
    const restarts = quick ? (k.restarts ?? 0) + 1 : 1;
    if (restarts > MAX_QUICK_RESTARTS) {
      log(`checkpoint dom${k.domid} (${k.name}): not restarted: started again ${restarts - 1} times, each within ${QUICK_RESTART_MS / 1000} s of the one before (is the daemon dying on it?): checkpoint.start starts it again`);
      loopStore.remove(k.domid);
      return;
    }
    const entry: StoredLoop = { ...k, restarts, restartedAt: new Date(now).toISOString() };
    const req: CheckpointStartRequest = { op: "checkpoint.start", domid: k.domid, intervalMs: k.intervalMs, ...(k.count === undefined ? {} : { count: k.count }), ...(k.path === undefined ? {} : { path: k.path }), ...(k.timeoutMs === undefined ? {} : { timeoutMs: k.timeoutMs }) };
    try {
      // A loop with a count starts again with its whole count: the cycles done before are not kept.
      await this.start(req, entry);
      log(`checkpoint dom${k.domid} (${k.name}): loop started again (began ${k.since})`);
    } catch (err) {
      this.#restartFailed(k, firstTry, now, err);
    }
  }

  #restartFailed(k: StoredLoop, firstTry: number, now: number, err: unknown): void {
    const { loopStore, log } = this.#ctx;
    // The daemon stopping meanwhile keeps the entry for the next start.
    if (this.#stopping) return;
    // A loop already running (a checkpoint.start while this one waited) owns the entry now.
    if (this.#ctx.domains.get(k.domid)?.loop?.running === true) {
      log(`checkpoint dom${k.domid} (${k.name}): a loop already runs on it: the kept one is not restarted`);
      return;
    }
    // What a running loop would have skipped (the toolstack has the domain, it is suspended or
    // paused, a lock is held, xenstore was slow) is tried again for a while; a domain gone or shut
    // down is final.
    const retry = this.#ctx.settings.keptLoopRetry;
    if (FINAL_RESTART_ERRORS.has(toDaemonError(err).code) || now - firstTry >= retry.forMs) {
      log(`checkpoint dom${k.domid} (${k.name}): loop not restarted: ${errorText(err)}`);
      loopStore.remove(k.domid);
      return;
    }
    log(`checkpoint dom${k.domid} (${k.name}): loop not restarted yet (${errorText(err)}): trying again in ${retry.everyMs / 1000} s`);
    const t = setTimeout(() => {
      this.#retries.delete(k.domid);
      void this.#tracked(k, firstTry);
    }, retry.everyMs);
    t.unref();
    this.#retries.set(k.domid, t);
  }

  #cancelRetry(domid: number): void {
    clearTimeout(this.#retries.get(domid));
    this.#retries.delete(domid);
  }

  /**
   * A loop run on this request: a progress frame once it is set up and every `progressMs` after
   * (cumulative counts, so the server may drop one for a client that does not read), then the
   * loop's summary when it ends. The loop does not depend on the connection: `checkpoint.stop` (on
   * any connection) or the daemon's stop ends it.
   */
  async run(req: CheckpointRequest, progress: ProgressSink | undefined): Promise<LoopReply> {
    const loop = await this.#startLoop(req);
    const send = (): void => {
      progress?.({ domid: req.domid, ...loopCounts(loop) });
    };
    send();
    const timer = progress === undefined ? undefined : setInterval(send, req.progressMs ?? DEFAULT_PROGRESS_MS);
    try {
      await loop.finished;
    } finally {
      clearInterval(timer);
    }
    return { domid: req.domid, loop: loopStatus(loop) };
  }

  async stop(d: number): Promise<LoopReply> {
    const dom = this.#ctx.domains.get(d);
    const loop = dom?.loop;
    if (dom === undefined || loop === undefined || !loop.running) {
      this.#ctx.domains.info(d);
      throw new DaemonError("ENOLOOP", `no checkpoint loop is running on domain ${d}`);
    }
    loop.stoppedBy = "request";
    loop.stop.abort(); // the cycle in flight completes (see Daemon.stop)
    await loop.finished;
    return { domid: d, loop: loopStatus(loop) };
  }

  /**
   * Sets up (or reuses) the session now, so that no path / a held lock is this request's error, and
   * starts the loop. The loop is in place before the queued set-up ends: a request queued behind it
   * (suspend) sees it.
   */
  async #startLoop(req: CheckpointStartRequest | CheckpointRequest): Promise<Loop> {
    const { domains } = this.#ctx;
    const d = req.domid;
    domains.info(d);
    await domains.name(d); // before its first work: the domain's series carry its name from the start
    const dom = domains.state(d);
    if (dom.loop?.running === true) throw new DaemonError("EBUSY", `${req.op}: a checkpoint loop already runs on domain ${d} (checkpoint.stop first)`);
    return this.#ctx.queue.run(d, async () => {
      let path: string | undefined;
      this.#sessions.take(dom, req.op);
      try {
        assertRunning(domains.info(d), req.op);
        path = (await this.#sessions.session(dom, req.path ?? dom.requestedPath)).path;
      } finally {
        this.#sessions.release(dom);
      }
      if (loopRunning(dom)) throw new DaemonError("EBUSY", `${req.op}: a checkpoint loop already runs on domain ${d}`);
      return this.#newLoop(dom, req, path);
    });
  }

  #newLoop(dom: DomainState, req: CheckpointStartRequest | CheckpointRequest, path: string | undefined): Loop {
    const stop = new AbortController();
    const state: LoopState = {
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
    };
    const runner = new CheckpointRunner({
      intervalMs: req.intervalMs,
      ...(req.count === undefined ? {} : { count: req.count }),
      signal: stop.signal,
      failureBudget: MAX_CONSECUTIVE_FAILURES,
      keepSamples: ROLLING_WINDOW,
      ...new LoopAttempts(this.#ctx, this.#sessions, dom, state).hooks(),
    });
    const loop: Loop = Object.assign(state, { runner });
    dom.loop = loop;
    // Journalled per cycle (loop-attempt.ts), not for the loop's life.
    loop.finished = this.#run(dom, loop);
    return loop;
  }

  async #run(dom: DomainState, loop: Loop): Promise<void> {
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
      await this.#ctx.queue.run(d, () => {
        this.#sessions.release(dom);
      }).catch((err: unknown) => {
        this.#ctx.log(`checkpoint dom${d}: letting go of its locks: ${errorText(err)}`);
      });
      loop.running = false;
      dom.lastUsed = Date.now();
      // The daemon's stop keeps it for the next start; every other end is the loop's own.
      if (loop.kept === true && loop.stoppedBy !== "shutdown") this.#ctx.loopStore.remove(d);
    }
  }
}

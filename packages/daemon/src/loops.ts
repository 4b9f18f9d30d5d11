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
import { loopSettings, type StoredLoop } from "./loop-store";

/** Where a `checkpoint` request's progress frames go (the server writes them to the connection). */
export type ProgressSink = (p: CheckpointProgress) => void;

/** A loop stops after this many failed cycles in a row. */
const MAX_CONSECUTIVE_FAILURES = 10;

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

  constructor(ctx: DaemonContext, sessions: Sessions) {
    this.#ctx = ctx;
    this.#sessions = sessions;
  }

  /**
   * A loop that is kept for the next daemon until it ends for a reason of its own (#run). `kept`:
   * the stored entry it restarts (its begin time and restart count carry over).
   */
  async start(req: CheckpointStartRequest, kept?: StoredLoop): Promise<CheckpointStartReply> {
    const loop = await this.#startLoop(req);
    const name = this.#ctx.domains.nameRead(req.domid);
    if (name !== undefined && name !== "") {
      loop.kept = true;
      this.#ctx.loopStore.set({
        ...loopSettings(req), name, since: kept?.since ?? loop.startedAt,
        ...(kept?.restarts === undefined ? {} : { restarts: kept.restarts, restartedAt: kept.restartedAt }),
      });
    } else {
      // Without a name a restarted daemon could not tell the domain from a new one with its domid.
      this.#ctx.log(`checkpoint dom${req.domid}: the domain has no name in xenstore: its loop is not kept across a daemon restart`);
    }
    return { domid: req.domid, started: true, path: loop.path, intervalMs: loop.intervalMs, count: loop.count };
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
      // The daemon's stop keeps it for the next start, as an orderly end (not one of the quick
      // restarts kept-loops.ts counts against a daemon dying on it); every other end is the loop's own.
      if (loop.kept === true && loop.stoppedBy === "shutdown") this.#ctx.loopStore.clearRestarts(d);
      else if (loop.kept === true) this.#ctx.loopStore.remove(d);
    }
  }
}

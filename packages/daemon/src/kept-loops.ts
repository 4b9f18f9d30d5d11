// Starting again the checkpoint loops a previous daemon kept (loops.json, loop-store.ts): once the
// daemon serves and can be stopped in order (main.ts), all at once, each on a domain that still
// has the same name. A loop that cannot start yet (its domain paused or suspended by another tool,
// xl holding it, a slow xenstore) is tried again for a while; a daemon that keeps dying soon after
// starting a loop (systemd restarting it into the same fault) has that loop dropped. A client's
// `checkpoint.stop` drops a loop still waiting to start; its `checkpoint.start` takes its place.
import { errorText, summarize } from "@fastsuspend/coordinator";

import type { DaemonContext } from "./context";
import { startRequest, type StoredLoop } from "./loop-store";
import type { Loops } from "./loops";
import type { LoopReply } from "./protocol";
import { toDaemonError } from "./to-daemon-error";

/** Restarts of a kept loop closer together than this count as a crash loop. */
const QUICK_RESTART_MS = 60_000;
/** A kept loop is dropped after this many quick restarts in a row. */
const MAX_QUICK_RESTARTS = 5;
/** Why a kept loop is not tried again: its domain is gone, shut down or dom0, or its entry is bad. */
const FINAL_RESTART_ERRORS = new Set<string>(["ENODOMAIN", "EDYING", "EDOMAIN", "ECONTROLDOMAIN", "EINVAL"]);

export class KeptLoops {
  readonly #ctx: DaemonContext;
  readonly #loops: Loops;
  /** Kept loops waiting to be tried again, by domid. */
  readonly #retries = new Map<number, NodeJS.Timeout>();
  /** Restarts in flight, by domid. */
  readonly #inFlight = new Map<number, Promise<void>>();
  /** Domains whose waiting loop a client stopped: a restart in flight does not start it. */
  readonly #dropped = new Set<number>();
  #quiescing = false;

  constructor(ctx: DaemonContext, loops: Loops) {
    this.#ctx = ctx;
    this.#loops = loops;
  }

  /** Every kept loop, started again or dropped or waiting for a retry when this resolves. */
  async restartAll(): Promise<void> {
    await Promise.all(this.#ctx.loopStore.list().map((k) => this.#tracked(k, Date.now())));
  }

  /** The daemon's stop, first step: no restart begins from now on, no retry fires. */
  beginQuiesce(): void {
    this.#quiescing = true;
    for (const d of [...this.#retries.keys()]) this.#cancelRetry(d);
  }

  /** The restarts in flight, ended (their loops then stopped by the daemon like the others). */
  async settled(): Promise<void> {
    await Promise.all([...this.#inFlight.values()]);
  }

  /** A client's `checkpoint.start` began a loop on the domain: the kept one waits no more. */
  startedByClient(domid: number): void {
    this.#cancelRetry(domid);
  }

  /**
   * A client's `checkpoint.stop` on a domain whose kept loop has not started yet (waiting for a
   * retry, or its set-up in flight): dropped, with its entry, and its status as the reply. Undefined
   * when there was none waiting (or it started meanwhile: the caller stops it as any other loop).
   */
  async stopWaiting(domid: number): Promise<LoopReply | undefined> {
    const k = this.#ctx.loopStore.get(domid);
    const waiting = this.#retries.has(domid) || this.#inFlight.has(domid);
    if (k === undefined || !waiting) return undefined;
    this.#cancelRetry(domid);
    this.#dropped.add(domid);
    try {
      await this.#inFlight.get(domid);
    } finally {
      this.#dropped.delete(domid);
    }
    if (this.#ctx.domains.get(domid)?.loop?.running === true) return undefined;
    this.#ctx.loopStore.remove(domid);
    this.#ctx.log(`checkpoint dom${domid} (${k.name}): the kept loop waiting to start again was dropped (checkpoint.stop)`);
    const empty = summarize([]);
    return {
      domid,
      loop: {
        running: false, intervalMs: k.intervalMs, count: k.count ?? null, path: k.path ?? null, startedAt: k.since,
        done: 0, ok: 0, failed: 0, skipped: 0, lastError: null, lastSkip: null, stoppedBy: "request", cycleMs: empty, suspendMs: empty,
      },
    };
  }

  #tracked(k: StoredLoop, firstTry: number): Promise<void> {
    const attempt = this.#restartOne(k, firstTry).finally(() => this.#inFlight.delete(k.domid));
    this.#inFlight.set(k.domid, attempt);
    return attempt;
  }

  /** Read through a method: a stop may begin at any await of a restart. */
  #stopped(domid: number): boolean {
    return this.#quiescing || this.#dropped.has(domid);
  }

  async #restartOne(k: StoredLoop, firstTry: number): Promise<void> {
    const { loopStore, domains, log } = this.#ctx;
    const now = Date.now();
    const name = await domains.name(k.domid);
    if (this.#stopped(k.domid)) return;
    if (name !== k.name) {
      log(`checkpoint dom${k.domid}: not restarted: the loop was on "${k.name}", the domain is ${name === undefined ? "gone" : `now "${name}"`}`);
      loopStore.remove(k.domid);
      return;
    }
    const quick = k.restartedAt !== undefined && now - Date.parse(k.restartedAt) < QUICK_RESTART_MS;
    const restarts = quick ? (k.restarts ?? 0) + 1 : 1;
    if (restarts > MAX_QUICK_RESTARTS) {
      log(`checkpoint dom${k.domid} (${k.name}): not restarted: started again ${restarts - 1} times, each within ${QUICK_RESTART_MS / 1000} s of the one before, and the daemon never stopped in order in between (is it dying on this loop?): checkpoint.start starts it again`);
      loopStore.remove(k.domid);
      return;
    }
    // Counted before the set-up: a daemon that dies in it (detect, bind: native code) is counted too.
    const entry: StoredLoop = { ...k, restarts, restartedAt: new Date(now).toISOString() };
    loopStore.set(entry);
    const req = startRequest(k);
    try {
      // A loop with a count starts again with its whole count: the cycles done before are not kept.
      await this.#loops.start(req, entry);
      log(`checkpoint dom${k.domid} (${k.name}): loop started again (began ${k.since})`);
    } catch (err) {
      this.#restartFailed(k, firstTry, now, err);
    }
  }

  #restartFailed(k: StoredLoop, firstTry: number, now: number, err: unknown): void {
    const { loopStore, log } = this.#ctx;
    // The daemon stopping meanwhile keeps the entry for the next start; a client's stop dropped it.
    if (this.#stopped(k.domid)) return;
    const running = this.#ctx.domains.get(k.domid)?.loop;
    if (running?.running === true) {
      // A client's loop began while this one waited: a `checkpoint.start` loop owns the entry now
      // (it rewrote it); a `checkpoint` loop is not kept, so neither is this one.
      if (running.kept !== true) loopStore.remove(k.domid);
      log(`checkpoint dom${k.domid} (${k.name}): a client's loop already runs on it: the kept one is ${running.kept === true ? "replaced by it" : "dropped"}`);
      return;
    }
    // What a running loop would have skipped (the toolstack has the domain, it is suspended or
    // paused, a lock is held, xenstore was slow) is tried again for a while; a domain gone or shut
    // down is final.
    const retry = this.#ctx.settings.keptLoopRetry;
    if (FINAL_RESTART_ERRORS.has(toDaemonError(err).code) || now - firstTry >= retry.forMs) {
      log(`checkpoint dom${k.domid} (${k.name}): loop not restarted${now - firstTry >= retry.forMs ? ` (tried for ${Math.round((now - firstTry) / 1000)} s)` : ""}: ${errorText(err)}`);
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
}

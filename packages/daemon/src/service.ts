// Starting and stopping the whole daemon around injected Xen and xenstore (the real ones in
// main.ts, the fakes in tests): root check, pid lock, crash recovery from the journal, domain
// following, the socket, and the opt-in metrics HTTP listener.
import { rmSync } from "node:fs";
import { join } from "node:path";

import type { SessionOptions, XenstoreLike } from "@fastsuspend/coordinator";
import type { XenBinding } from "@fastsuspend/xen";

import { Daemon } from "./daemon";
import { Journal, recoverJournal, type RecoveryAction } from "./journal";
import { LoopStore } from "./loop-store";
import { MetricsHttpServer, parseListenAddress, type ListenAddress } from "./metrics-http";
import { acquirePidLock, type PidLock } from "./pidlock";
import { ToolstackScanner } from "./toolstack";
import { DaemonError, DEFAULT_RUN_DIR } from "./protocol";
import { DaemonServer } from "./server";

export interface ServiceOptions {
  xen: XenBinding;
  xs: XenstoreLike;
  /** Default /run/fastsuspend/daemon.sock. */
  socketPath?: string;
  /** Holds daemon.pid, journal.json and loops.json (default /run/fastsuspend). */
  runDir?: string;
  idleMs?: number;
  session?: SessionOptions;
  maxLineBytes?: number;
  log?: (line: string) => void;
  toolstackUser?: (domid: number, name: string | undefined) => Promise<string | undefined> | string | undefined;
  maxRequestHoldMs?: number;
  /** Cycles keep skipping this long after one was skipped for another tool (default 2000 ms). */
  toolstackCooldownMs?: number;
  /**
   * Serve GET /metrics over HTTP on this loopback address ("127.0.0.1:9477", or parsed). Off by
   * default. A bad or non-loopback address, or one that cannot be bound, fails the start
   * (MetricsListenError) with nothing left behind.
   */
  metricsListen?: string | ListenAddress;
  /** How long a gone domain's series stay in the metrics (default 300 000 ms). */
  goneSeriesMs?: number;
  /** See DaemonOptions.keptLoopRetry. */
  keptLoopRetry?: { everyMs: number; forMs: number };
}

export interface RunningService {
  daemon: Daemon;
  server: DaemonServer;
  /** The metrics HTTP listener, when metricsListen was given. */
  metricsHttp: MetricsHttpServer | undefined;
  pidLock: PidLock;
  recovery: RecoveryAction[];
  /** Closes the socket (file removed), stops the daemon, drops the pid file. Idempotent. */
  stop(): Promise<void>;
  /** At a stop deadline: socket and pid file removed now; the journal stays for the next start. */
  abandon(): void;
  /**
   * Starts again the checkpoint loops the previous daemon kept (loops.json). Not part of the start:
   * the caller calls it once its signal handlers are in place, so that a stop meanwhile is orderly.
   */
  restartKeptLoops(): Promise<void>;
}

/** Refuses to run as non-root unless allowed (tests): the socket API suspends domains. */
export function assertRoot(getuid: (() => number) | undefined, allowNonRoot: boolean): void {
  if (allowNonRoot || getuid === undefined) return;
  const uid = getuid();
  if (uid !== 0) {
    throw new DaemonError("EINVAL", `fastsuspendd must run as root (uid ${uid}): it drives the hypervisor interface and serves a root-only socket (set FASTSUSPEND_ALLOW_NONROOT=1 only for tests)`);
  }
}

export async function startService(opts: ServiceOptions): Promise<RunningService> {
  const log = opts.log ?? (() => undefined);
  // Checked before anything is taken: a typo in the address is the caller's to fix.
  const metricsAddr = typeof opts.metricsListen === "string" ? parseListenAddress(opts.metricsListen) : opts.metricsListen;
  const runDir = opts.runDir ?? DEFAULT_RUN_DIR;
  const socketPath = opts.socketPath ?? join(runDir, "daemon.sock");
  const pidLock = await acquirePidLock(join(runDir, "daemon.pid"));
  if (pidLock.replacedStale !== undefined) log(`replaced a stale pid file (pid ${pidLock.replacedStale} no longer holds the daemon lock)`);
  let daemon: Daemon | undefined;
  let server: DaemonServer | undefined;
  let metricsHttp: MetricsHttpServer | undefined;
  try {
    const loaded = Journal.load(join(runDir, "journal.json"));
    if (loaded.problem !== undefined) log(loaded.problem);
    // The same checks a cycle makes before touching the guest (the /proc scan included: xl save or
    // migrate of a stock guest takes no lock).
    const scanner = new ToolstackScanner();
    const recovery = await recoverJournal(loaded.journal, opts.xen, opts.xs, { toolstackUser: opts.toolstackUser ?? ((d, n) => scanner.user(d, n)) });
    for (const a of recovery) log(`recovery: domain ${a.domid}: ${a.action}${a.unsubscribed ? ", suspend subscription reset" : ""}${a.detail !== undefined ? ` (${a.detail})` : ""}`);
    const kept = LoopStore.load(join(runDir, "loops.json"), log);
    if (kept.problem !== undefined) log(kept.problem);
    daemon = new Daemon({
      xen: opts.xen,
      xs: opts.xs,
      journal: loaded.journal,
      loopStore: kept.store,
      log,
      ...(opts.idleMs === undefined ? {} : { idleMs: opts.idleMs }),
      ...(opts.session === undefined ? {} : { session: opts.session }),
      ...(opts.toolstackUser === undefined ? {} : { toolstackUser: opts.toolstackUser }),
      ...(opts.toolstackCooldownMs === undefined ? {} : { toolstackCooldownMs: opts.toolstackCooldownMs }),
      ...(opts.maxRequestHoldMs === undefined ? {} : { maxRequestHoldMs: opts.maxRequestHoldMs }),
      ...(opts.goneSeriesMs === undefined ? {} : { goneSeriesMs: opts.goneSeriesMs }),
      ...(opts.keptLoopRetry === undefined ? {} : { keptLoopRetry: opts.keptLoopRetry }),
    });
    await daemon.start();
    server = new DaemonServer(daemon, { socketPath, log, ...(opts.maxLineBytes === undefined ? {} : { maxLineBytes: opts.maxLineBytes }) });
    await server.listen();
    if (metricsAddr !== undefined) {
      const dm = daemon;
      // Through handle(): a scrape is counted and waits for the cycle in flight like a socket request.
      const render = async (): Promise<string> => {
        const text = await dm.handle({ op: "metrics" });
        return typeof text === "string" ? text : "";
      };
      metricsHttp = new MetricsHttpServer({ render, log });
      await metricsHttp.listen(metricsAddr);
    }
    const d = daemon;
    const s = server;
    const h = metricsHttp;
    let stopping: Promise<void> | undefined;
    return {
      daemon: d,
      server: s,
      metricsHttp: h,
      pidLock,
      recovery,
      restartKeptLoops: () => d.restartKeptLoops(),
      abandon: () => {
        void h?.close();
        rmSync(s.socketPath, { force: true });
        if (d.journal.entries().length === 0) d.journal.unlink();
        pidLock.release();
      },
      stop: () => {
        stopping ??= (async () => {
          // The socket and the listener go first: clients see the daemon gone at once.
          await Promise.all([s.close(), h?.close()]);
          await d.stop();
          if (d.journal.entries().length === 0) d.journal.unlink();
          if (d.loopStore.list().length === 0) d.loopStore.unlink();
          pidLock.release();
        })();
        return stopping;
      },
    };
  } catch (err) {
    await metricsHttp?.close().catch(() => undefined);
    await daemon?.stop().catch(() => undefined);
    await server?.close().catch(() => undefined);
    // As a clean stop leaves it: an empty journal is removed, one with entries kept for the next start.
    if (daemon?.journal.entries().length === 0) daemon.journal.unlink();
    pidLock.release();
    throw err;
  }
}

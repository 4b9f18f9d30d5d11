// Starting and stopping the whole daemon around injected Xen and xenstore (the real ones in
// main.ts, the fakes in tests): root check, pid lock, crash recovery from the journal, domain
// following, the socket.
import { rmSync } from "node:fs";
import { join } from "node:path";

import type { SessionOptions, XenstoreLike } from "@fastsuspend/coordinator";
import type { XenBinding } from "@fastsuspend/xen";

import { Daemon } from "./daemon";
import { Journal, recoverJournal, type RecoveryAction } from "./journal";
import { acquirePidLock, type PidLock } from "./pidlock";
import { ToolstackScanner } from "./toolstack";
import { DaemonError, DEFAULT_RUN_DIR } from "./protocol";
import { DaemonServer } from "./server";

export interface ServiceOptions {
  xen: XenBinding;
  xs: XenstoreLike;
  /** Default /run/fastsuspend/daemon.sock. */
  socketPath?: string;
  /** Holds daemon.pid and journal.json (default /run/fastsuspend). */
  runDir?: string;
  idleMs?: number;
  session?: SessionOptions;
  maxLineBytes?: number;
  log?: (line: string) => void;
  toolstackUser?: (domid: number, name: string | undefined) => Promise<string | undefined> | string | undefined;
  maxRequestHoldMs?: number;
  /** Cycles keep skipping this long after one was skipped for another tool (default 2000 ms). */
  toolstackCooldownMs?: number;
}

export interface RunningService {
  daemon: Daemon;
  server: DaemonServer;
  pidLock: PidLock;
  recovery: RecoveryAction[];
  /** Closes the socket (file removed), stops the daemon, drops the pid file. Idempotent. */
  stop(): Promise<void>;
  /** At a stop deadline: socket and pid file removed now; the journal stays for the next start. */
  abandon(): void;
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
  const runDir = opts.runDir ?? DEFAULT_RUN_DIR;
  const socketPath = opts.socketPath ?? join(runDir, "daemon.sock");
  const pidLock = await acquirePidLock(join(runDir, "daemon.pid"));
  if (pidLock.replacedStale !== undefined) log(`replaced a stale pid file (pid ${pidLock.replacedStale} no longer holds the daemon lock)`);
  let daemon: Daemon | undefined;
  let server: DaemonServer | undefined;
  try {
    const loaded = Journal.load(join(runDir, "journal.json"));
    if (loaded.problem !== undefined) log(loaded.problem);
    // The same checks a cycle makes before touching the guest (the /proc scan included: xl save or
    // migrate of a stock guest takes no lock).
    const scanner = new ToolstackScanner();
    const recovery = await recoverJournal(loaded.journal, opts.xen, opts.xs, { toolstackUser: opts.toolstackUser ?? ((d, n) => scanner.user(d, n)) });
    for (const a of recovery) log(`recovery: domain ${a.domid}: ${a.action}${a.unsubscribed ? ", suspend subscription reset" : ""}${a.detail !== undefined ? ` (${a.detail})` : ""}`);
    daemon = new Daemon({
      xen: opts.xen,
      xs: opts.xs,
      journal: loaded.journal,
      log,
      ...(opts.idleMs === undefined ? {} : { idleMs: opts.idleMs }),
      ...(opts.session === undefined ? {} : { session: opts.session }),
      ...(opts.toolstackUser === undefined ? {} : { toolstackUser: opts.toolstackUser }),
      ...(opts.toolstackCooldownMs === undefined ? {} : { toolstackCooldownMs: opts.toolstackCooldownMs }),
      ...(opts.maxRequestHoldMs === undefined ? {} : { maxRequestHoldMs: opts.maxRequestHoldMs }),
    });
    await daemon.start();
    server = new DaemonServer(daemon, { socketPath, log, ...(opts.maxLineBytes === undefined ? {} : { maxLineBytes: opts.maxLineBytes }) });
    await server.listen();
    const d = daemon;
    const s = server;
    let stopping: Promise<void> | undefined;
    return {
      daemon: d,
      server: s,
      pidLock,
      recovery,
      abandon: () => {
        rmSync(s.socketPath, { force: true });
        if (d.journal.entries().length === 0) d.journal.unlink();
        pidLock.release();
      },
      stop: () => {
        stopping ??= (async () => {
          // The socket goes first: clients see the daemon gone at once.
          await s.close();
          await d.stop();
          if (d.journal.entries().length === 0) d.journal.unlink();
          pidLock.release();
        })();
        return stopping;
      },
    };
  } catch (err) {
    await daemon?.stop().catch(() => undefined);
    await server?.close().catch(() => undefined);
    pidLock.release();
    throw err;
  }
}

#!/usr/bin/env node
// fastsuspendd: see docs/daemon.md. Runs in the foreground (systemd Type=notify: src/sd-notify.ts), logs to stderr.
import { parseArgs } from "node:util";

import { XenstoreClient } from "@fastsuspend/xenstore";
import { openXen, type XenBinding } from "@fastsuspend/xen";

import { defaultSocketPath } from "./client";
import { parseListenAddress, type ListenAddress } from "./metrics-http";
import { DEFAULT_RUN_DIR } from "./protocol";
import { notifyReady } from "./sd-notify";
import { assertRoot, startService, type RunningService } from "./service";

const USAGE = `usage: fastsuspendd [--socket PATH] [--run-dir DIR] [--idle-ms MS] [--metrics-listen ADDR] [--allow-non-root]

  --socket PATH          API socket (default $FASTSUSPEND_SOCKET or /run/fastsuspend/daemon.sock)
  --run-dir DIR          pid file and crash journal (default $FASTSUSPEND_RUN_DIR or /run/fastsuspend)
  --idle-ms MS           close a domain's warm session after MS without use (default 60000)
  --metrics-listen ADDR  also serve Prometheus metrics at http://ADDR/metrics; ADDR is a loopback
                         address and port, e.g. 127.0.0.1:9477 or [::1]:9477 (default: off;
                         \`fastsuspend metrics\` reads them through the socket either way)
  --allow-non-root       tests only (also FASTSUSPEND_ALLOW_NONROOT=1)`;

const log = (line: string): void => {
  process.stderr.write(`fastsuspendd: ${line}\n`);
};

async function main(): Promise<number> {
  let v;
  try {
    v = parseArgs({
      args: process.argv.slice(2),
      strict: true,
      options: {
        socket: { type: "string" },
        "run-dir": { type: "string" },
        "idle-ms": { type: "string" },
        "metrics-listen": { type: "string" },
        "allow-non-root": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (err) {
    log(`${err instanceof Error ? err.message : String(err)}\n${USAGE}`);
    return 2;
  }
  if (v.help === true) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const idle = v["idle-ms"];
  if (idle !== undefined && !/^[0-9]+$/.test(idle)) {
    log(`--idle-ms must be a non-negative integer, got "${idle}"`);
    return 2;
  }
  // Checked before Xen is opened: a bad address is a usage error (exit 2).
  let metricsListen: ListenAddress | undefined;
  try {
    const m = v["metrics-listen"];
    metricsListen = m === undefined ? undefined : parseListenAddress(m);
  } catch (err) {
    log(err instanceof Error ? err.message : String(err));
    return 2;
  }
  try {
    assertRoot(process.getuid, v["allow-non-root"] === true || process.env.FASTSUSPEND_ALLOW_NONROOT === "1");
  } catch (err) {
    log(err instanceof Error ? err.message : String(err));
    return 3;
  }
  let xen: XenBinding;
  try {
    xen = openXen(); // says why: no /dev/xen, addon not built, not root
  } catch (err) {
    log(err instanceof Error ? err.message : String(err));
    return 3;
  }
  let xs: XenstoreClient;
  try {
    xs = await XenstoreClient.connect();
  } catch (err) {
    xen.close();
    log(`cannot reach xenstored: ${err instanceof Error ? err.message : String(err)}`);
    return 3;
  }
  const runDir = v["run-dir"] ?? process.env.FASTSUSPEND_RUN_DIR ?? DEFAULT_RUN_DIR;
  // The handlers go in before anything starts: a SIGTERM during the start (systemd's stop while the
  // unit is still activating) then stops in order instead of killing the process mid-cycle.
  let svc: RunningService | undefined;
  let signalled: NodeJS.Signals | undefined;
  let onSignal: (sig: NodeJS.Signals) => void = (sig) => {
    if (signalled !== undefined) {
      // A second one while the start hangs (xenstored, a set-up): the administrator means it.
      log(`${sig} again during the start: exiting now (the journal is kept for the next start)`);
      process.exit(1);
    }
    signalled = sig;
    log(`${sig} during the start: stopping once it is done`);
  };
  const handler = (sig: NodeJS.Signals): void => {
    onSignal(sig);
  };
  process.on("SIGTERM", handler);
  process.on("SIGINT", handler);
  try {
    svc = await startService({
      xen,
      xs,
      runDir,
      socketPath: v.socket ?? defaultSocketPath(),
      log,
      ...(idle === undefined ? {} : { idleMs: Number(idle) }),
      ...(metricsListen === undefined ? {} : { metricsListen }),
    });
  } catch (err) {
    log(err instanceof Error ? err.message : String(err));
    await xs.close();
    xen.close();
    return 1;
  }
  log(`listening on ${svc.server.socketPath} (pid ${process.pid})`);
  const http = svc.metricsHttp?.address;
  if (http !== undefined) log(`metrics on http://${http.host.includes(":") ? `[${http.host}]` : http.host}:${http.port}/metrics`);
  if (signalled === undefined) void notifyReady(`listening on ${svc.server.socketPath}`, log); // systemd Type=notify: READY=1
  const s = svc;
  await new Promise<void>((resolve) => {
    let once = false;
    onSignal = (sig: NodeJS.Signals): void => {
      if (once) return;
      once = true;
      const t0 = process.hrtime.bigint();
      const took = (): string => `${(Number(process.hrtime.bigint() - t0) / 1e6).toFixed(0)} ms`;
      log(`${sig}: stopping`);
      // Within a second whatever happens: a cycle still in flight at the deadline is left to the
      // journal (the next start resumes the guest if it is left suspended).
      const hard = setTimeout(() => {
        s.abandon();
        log(`stop deadline after ${took()}: exiting with the journal kept (${s.daemon.journal.entries().map((e) => e.domid).join(", ") || "empty"})`);
        resolve();
      }, 800);
      void s.stop().then(
        () => {
          clearTimeout(hard);
          log(`stopped in ${took()}`);
          resolve();
        },
        (err: unknown) => {
          clearTimeout(hard);
          log(`stop: ${err instanceof Error ? err.message : String(err)} (after ${took()})`);
          resolve();
        },
      );
    };
    if (signalled !== undefined) {
      onSignal(signalled);
      return;
    }
    // The loops the previous daemon kept, now that a stop is orderly (issue 16).
    void s.restartKeptLoops().catch((err: unknown) => {
      log(`restarting the kept loops: ${err instanceof Error ? err.message : String(err)}`);
    });
  });
  // Exit now: the kernel closes xenstore's socket and the event-channel handles.
  return 0;
}

void main().then((code) => {
  process.exit(code);
});

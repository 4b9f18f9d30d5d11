// The real environment: root, /dev/xen through the addon, xenstored through its socket.
import { spawn } from "node:child_process";
import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";

import { DaemonClient } from "@fastsuspend/daemon/client";
import { openXen } from "@fastsuspend/xen";
import { XenstoreClient } from "@fastsuspend/xenstore";

import type { Deps, XenEnv } from "./context";
import { EnvironmentError } from "./exit-codes";

export async function openRealEnv(): Promise<XenEnv> {
  if (typeof process.getuid === "function" && process.getuid() !== 0) {
    throw new EnvironmentError("must run as root (the hypervisor interface and the suspend lock need it)");
  }
  const xen = openXen(); // XenUnavailableError says why (no /dev/xen, addon not built)
  let xs: XenstoreClient;
  try {
    xs = await XenstoreClient.connect();
  } catch (err) {
    xen.close();
    throw new EnvironmentError(`cannot reach xenstored: ${err instanceof Error ? err.message : String(err)}`);
  }
  return {
    xen,
    xs,
    close: async () => {
      await xs.close();
      xen.close();
    },
  };
}

/**
 * Writes `text` to a temporary file beside `path` and renames it over `path`: a reader (node_exporter's
 * textfile collector) sees the old file or the new one, never half of one. The temporary name does
 * not end in .prom, so the collector skips it.
 */
export function writeFileAtomic(path: string, text: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, text, { mode: 0o644 });
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

export function realDeps(): Deps {
  // After a hangup (ssh dropped) writes to the terminal fail with EIO/EPIPE, emitted as 'error'
  // events: unhandled, they would kill the CLI while its signal guard is still resuming the guest.
  for (const stream of [process.stdout, process.stderr]) stream.on("error", () => undefined);
  return {
    openEnv: openRealEnv,
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
    spawnTimed: (argv) =>
      new Promise((resolve) => {
        const t0 = process.hrtime.bigint();
        const [cmd, ...args] = argv;
        const child = spawn(cmd ?? "false", args, { stdio: ["ignore", "ignore", "pipe"] });
        let stderr = "";
        child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
        child.on("error", (err) => { resolve({ code: 127, ms: 0, stderr: err.message }); });
        child.on("exit", (code) => { resolve({ code: code ?? 1, ms: Number(process.hrtime.bigint() - t0) / 1e6, stderr }); });
      }),
    readText: (path) => {
      try {
        return readFileSync(path, "utf8").trim();
      } catch {
        return undefined;
      }
    },
    writeFile: (path, text) => { writeFileSync(path, text); },
    writeFileAtomic,
    connectDaemon: () => DaemonClient.tryConnect(),
    stderrIsTTY: process.stderr.isTTY,
  };
}

// One daemon at a time. The lock is a unix socket in Linux's abstract namespace, named after the
// pid file's absolute path: binding it is atomic, fails with EADDRINUSE while another process has
// it, and the kernel drops it when that process dies, kill -9 included (the flock(2) semantics that
// Node has no call for). The pid file beside it is written (tmp file + rename) only once the lock is
// held, for people and scripts (`cat daemon.pid`); it decides nothing.
//
// The previous scheme (pid file created with O_EXCL, replaced when its pid no longer ran) raced
// between two starters: one could read the other's file between its O_EXCL create and its write
// (empty: taken for stale), or two could both find a stale file and the second remove the first's
// new one; both then ran.
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { dirname, resolve } from "node:path";

import { DaemonError } from "./protocol";

export interface PidLock {
  readonly path: string;
  /** The pid a file left by a previous daemon named (it died without removing it), if any. */
  readonly replacedStale: number | undefined;
  release(): void;
}

/** The abstract socket name for a pid file (Linux: a leading NUL byte, at most 107 bytes). */
export function lockName(path: string): string {
  const abs = resolve(path);
  const name = `fastsuspendd:${abs}`;
  return Buffer.byteLength(name) <= 100 ? `\0${name}` : `\0fastsuspendd:sha256:${createHash("sha256").update(abs).digest("hex")}`;
}

function readPid(path: string): number | undefined {
  try {
    const text = readFileSync(path, "utf8").trim();
    return /^[0-9]+$/.test(text) ? Number(text) : undefined;
  } catch {
    return undefined;
  }
}

function bind(name: string): Promise<Server> {
  return new Promise((resolvePromise, reject) => {
    const server = createServer((sock) => {
      sock.destroy(); // nobody is meant to connect: this socket is a lock
    });
    server.once("error", reject);
    server.listen(name, () => {
      server.off("error", reject);
      server.unref();
      resolvePromise(server);
    });
  });
}

export async function acquirePidLock(path: string, pid: number = process.pid): Promise<PidLock> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  let server: Server;
  try {
    server = await bind(lockName(path));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EADDRINUSE") throw err;
    const other = readPid(path);
    throw new DaemonError("EBUSY", `another fastsuspendd is running (pid ${other === undefined ? "unknown" : String(other)}${other === pid ? ", this process" : ""}, pid file ${path})`);
  }
  // Ours now: whatever file is there was left by a daemon that no longer holds the lock.
  const old = readPid(path);
  const replacedStale = old !== undefined && old !== pid ? old : undefined;
  const tmp = `${path}.${pid}.tmp`;
  try {
    writeFileSync(tmp, `${pid}\n`, { mode: 0o644 });
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    server.close();
    throw err;
  }
  let released = false;
  return {
    path,
    replacedStale,
    release: () => {
      if (released) return;
      released = true;
      // The file first, then the lock: a starter that gets the lock never sees our file as current.
      if (readPid(path) === pid) rmSync(path, { force: true });
      server.close();
    },
  };
}

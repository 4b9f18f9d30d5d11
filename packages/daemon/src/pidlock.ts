// One daemon at a time: a pid file created with O_EXCL. A file left by a dead daemon (kill -9) is
// stale when its pid no longer runs: it is replaced.
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { dirname } from "node:path";

import { DaemonError } from "./protocol";

export interface PidLock {
  readonly path: string;
  /** A stale file (dead pid) was replaced. */
  readonly replacedStale: number | undefined;
  release(): void;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

export function acquirePidLock(path: string, pid: number = process.pid): PidLock {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  let replacedStale: number | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, "wx", 0o644);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      let text = "";
      try {
        text = readFileSync(path, "utf8").trim();
      } catch {
        continue; // removed meanwhile: try again
      }
      const other = /^[0-9]+$/.test(text) ? Number(text) : undefined;
      if (other !== undefined && alive(other)) {
        throw new DaemonError("EBUSY", `another fastsuspendd is running (pid ${other}${other === pid ? ", this process" : ""}, pid file ${path})`);
      }
      replacedStale = other;
      rmSync(path, { force: true });
      continue;
    }
    writeSync(fd, `${pid}\n`);
    closeSync(fd);
    let released = false;
    return {
      path,
      replacedStale,
      release: () => {
        if (released) return;
        released = true;
        try {
          if (readFileSync(path, "utf8").trim() === String(pid)) rmSync(path, { force: true });
        } catch {
          /* already gone */
        }
      },
    };
  }
  throw new DaemonError("EBUSY", `cannot take the pid file ${path} (it keeps reappearing)`);
}

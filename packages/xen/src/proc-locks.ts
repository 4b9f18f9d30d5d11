// Who waits for a file lock, from /proc/locks. A process blocked in flock() or F_SETLKW shows there
// as a "->" line under the lock it waits for, with its pid and the file's device and inode:
//
//   1: FLOCK  ADVISORY  WRITE 412 00:19:1234 0 EOF
//   1: -> FLOCK  ADVISORY  WRITE 980 00:19:1234 0 EOF
//
// (fs/locks.c, lock_get_status: "%02x:%02x:%lu" of MAJOR, MINOR of the superblock's dev, inode).
import { fstatSync, readFileSync } from "node:fs";

export interface LockLine {
  /** A waiter ("->"), not a holder. */
  blocked: boolean;
  /** FLOCK, POSIX, OFDLCK, LEASE... */
  kind: string;
  pid: number;
  major: number;
  minor: number;
  inode: bigint;
}

const LINE = /^\d+:\s+(->\s+)?(\S+)\s+\S+\s+\S+\s+(-?\d+)\s+([0-9a-f]+):([0-9a-f]+):(\d+)\s/;

export function parseProcLocks(text: string): LockLine[] {
  const out: LockLine[] = [];
  for (const line of text.split("\n")) {
    const m = LINE.exec(line);
    if (m === null) continue;
    out.push({
      blocked: m[1] !== undefined,
      kind: m[2] ?? "",
      pid: Number(m[3]),
      major: parseInt(m[4] ?? "", 16),
      minor: parseInt(m[5] ?? "", 16),
      inode: BigInt(m[6] ?? "0"),
    });
  }
  return out;
}

/** glibc's dev_t encoding (what stat() returns) split into the kernel's major and minor. */
export function splitDev(dev: bigint): { major: number; minor: number } {
  const major = Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn));
  const minor = Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn));
  return { major, minor };
}

/** Pids of the processes blocked waiting for a lock on the file (device `dev`, inode `ino`). */
export function lockWaiters(lines: LockLine[], dev: bigint, ino: bigint): number[] {
  const { major, minor } = splitDev(dev);
  return lines.filter((l) => l.blocked && l.inode === ino && l.major === major && l.minor === minor).map((l) => l.pid);
}

/** Whether any process is blocked waiting for a lock on the file open as `fd` in this process. */
export function fdHasLockWaiters(fd: number, procLocks = "/proc/locks"): boolean {
  const st = fstatSync(fd, { bigint: true });
  return lockWaiters(parseProcLocks(readFileSync(procLocks, "utf8")), st.dev, st.ino).length > 0;
}

// A child process that takes a suspend lock with the addon and holds it until its stdin closes:
// fcntl locks never conflict within one process, so "held by someone else" needs a second one.
import { spawn, spawnSync } from "node:child_process";

import { DEFAULT_ADDON_PATH } from "../native";

const CHILD = `
const m = { exports: {} };
process.dlopen(m, process.argv[1]);
const fd = m.exports.suspendLockAcquire(process.argv[2]);
process.stdout.write("locked\\n");
process.stdin.on("end", () => { m.exports.suspendLockRelease(fd, process.argv[2]); process.exit(0); });
process.stdin.resume();
`;

/** Resolves once the child holds the lock at `path`, to a function that makes it let go. */
export function holdSuspendLockInChild(path: string, addonPath: string = DEFAULT_ADDON_PATH): Promise<() => Promise<void>> {
  const child = spawn(process.execPath, ["-e", CHILD, addonPath, path], { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => { resolve(code); }));
  return new Promise((resolve, reject) => {
    child.stdout.on("data", (d: Buffer) => {
      if (!d.toString().includes("locked")) return;
      resolve(async () => {
        child.stdin.end();
        await exited;
      });
    });
    void exited.then((code) => {
      reject(new Error(`lock holder exited (${String(code)}) before locking ${path}: ${stderr.trim()}`));
    });
  });
}

/** Resolves once nobody holds the flock on `path` (tried with flock -n every 10 ms, 5 s at most). */
async function lockFreed(path: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (spawnSync("flock", ["-n", path, "true"], { stdio: "ignore" }).status === 0) return;
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * libxl's side of the userdata lock, played by util-linux flock(1) (the same flock(2) that
 * libxl__lock_file takes): "hold" resolves once it holds `path`; "wait" resolves at once, while it
 * blocks until the lock is free. Either way, to a function that ends it and gives its exit code.
 */
export function flockInChild(path: string, mode: "hold" | "wait"): Promise<() => Promise<number | null>> {
  const script = mode === "hold" ? "echo locked; exec sleep 60" : "echo got-it";
  // Its own process group: the shell and sleep that flock(1) runs inherit the locked fd.
  const child = spawn("flock", [path, "-c", script], { stdio: ["ignore", "pipe", "pipe"], detached: true });
  let stdout = "";
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => { resolve(code); }));
  const kill = (): void => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
    } catch {
      // already gone
    }
  };
  // "hold": end it now; "wait": give it 5 s to get the lock and exit by itself.
  const end = async (): Promise<number | null> => {
    if (mode === "hold") kill();
    const timer = setTimeout(kill, 5000);
    const code = await exited;
    clearTimeout(timer);
    // flock(1)'s exit is seen before the sleep it forked has died and closed the locked fd (a test
    // under load took the lock too early and got EAGAIN): wait until the lock is free.
    if (mode === "hold") await lockFreed(path);
    return code;
  };
  if (mode === "wait") return Promise.resolve(end);
  return new Promise((resolve, reject) => {
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
      if (stdout.includes("locked")) resolve(end);
    });
    void exited.then((code) => {
      reject(new Error(`flock(1) exited (${String(code)}) before locking ${path}: ${stderr.trim()}`));
    });
  });
}

// A child process that takes a suspend lock with the addon and holds it until its stdin closes:
// fcntl locks never conflict within one process, so "held by someone else" needs a second one.
import { spawn } from "node:child_process";

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

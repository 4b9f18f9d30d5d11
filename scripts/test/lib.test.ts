// scripts/lib.mjs, run as npm test runs it: in a node process of its own (it is an ES module).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const LIB = join(__dirname, "..", "lib.mjs");

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("killChildren", () => {
  test("ends what a child started too, not only the child (npx did not pass SIGTERM on to jest)", () => {
    const dir = mkdtempSync(join(tmpdir(), "fs-lib-"));
    const pidFile = join(dir, "grandchild");
    try {
      // A shell that starts a grandchild and waits for it, as npx waits for jest.
      const script = `
        import { sh, killChildren } from ${JSON.stringify(LIB)};
        import { existsSync } from "node:fs";
        const done = sh("sh", ["-c", "sleep 60 & echo $! > ${pidFile}; wait"]);
        const t = setInterval(() => { if (existsSync(${JSON.stringify(pidFile)})) { clearInterval(t); setTimeout(killChildren, 100); } }, 20);
        console.log(JSON.stringify({ code: await done }));`;
      const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", timeout: 20_000 });
      expect(JSON.parse(out.trim())).toEqual({ code: null });
      const grandchild = Number(readFileSync(pidFile, "utf8").trim());
      const end = Date.now() + 2000;
      while (alive(grandchild) && Date.now() < end) execFileSync("sleep", ["0.05"]);
      const left = alive(grandchild);
      if (left) process.kill(grandchild, "SIGKILL");
      expect(left).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

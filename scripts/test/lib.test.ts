// scripts/lib.mjs, run as npm test runs it: in a node process of its own (it is an ES module).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
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

describe("tally", () => {
  test("counts a results file and names each failed test with the head of its message, and a suite that failed outside its tests", () => {
    const dir = mkdtempSync(join(tmpdir(), "fs-lib-"));
    try {
      const file = join(dir, "r.json");
      const long = ["\u001b[1mexpect(received).toBe(expected)\u001b[22m", "", "Expected: 0", "Received: 1", ...Array.from({ length: 20 }, (_, i) => `    at line ${i}`)].join("\n");
      writeFileSync(file, JSON.stringify({
        numPassedTests: 1, numFailedTests: 1, numPendingTests: 2, numRuntimeErrorTestSuites: 1,
        testResults: [
          { name: `${process.cwd()}/packages/a/test/a.lab.test.ts`, status: "failed", assertionResults: [{ status: "passed", fullName: "a ok" }, { status: "failed", fullName: "a migrates", failureMessages: [long] }] },
          { name: `${process.cwd()}/packages/b/test/b.lab.test.ts`, status: "failed", message: "beforeAll: lab not up", assertionResults: [] },
          { name: `${process.cwd()}/packages/c/test/c.test.ts`, status: "passed", assertionResults: [{ status: "passed", fullName: "c" }] },
        ],
      }));
      const bench = join(dir, "daemon-load.json");
      writeFileSync(bench, JSON.stringify({ cycles: 100, medianMs: 12 }));
      const script = `import { tally } from ${JSON.stringify(LIB)}; console.log(JSON.stringify([${[file, join(dir, "absent.json"), bench].map((f) => `tally(${JSON.stringify(f)})`).join(", ")}]));`;
      type Tally = { passed: number; failed: number; skipped: number; failures: string[] };
      const [t, absent, notJest] = JSON.parse(execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", cwd: process.cwd(), timeout: 20_000 })) as [Tally, Tally, Tally];
      const none = { passed: 0, failed: 0, skipped: 0, failures: [] };
      expect(absent).toEqual(none);
      expect(notJest).toEqual(none); // a benchmark's numbers beside the results are no tests
      expect([t.passed, t.failed, t.skipped]).toEqual([1, 2, 2]); // a suite that did not run is a failure
      const listed = t.failures;
      expect(listed).toHaveLength(2);
      expect(listed[0]).toMatch(/^packages\/a\/test\/a\.lab\.test\.ts › a migrates\n {6}expect\(received\)\.toBe\(expected\)\n {6}Expected: 0\n {6}Received: 1\n/);
      expect(listed[0]?.split("\n")).toHaveLength(13); // the name and 12 lines of the message, ANSI codes gone
      expect(listed[1]).toBe("packages/b/test/b.lab.test.ts\n      beforeAll: lab not up");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

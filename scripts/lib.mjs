// Small helpers shared by the root scripts: timed stages and child processes with live output.
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";

const t0 = Date.now();
export const elapsed = () => ((Date.now() - t0) / 1000).toFixed(1);
export const log = (msg) => process.stderr.write(`[fastsuspend +${elapsed()}s] ${msg}\n`);

/** Runs a stage, reporting how long it took; stage results are collected for a summary. */
export const stages = [];
export async function stage(name, fn) {
  const s = Date.now();
  log(`== ${name}`);
  try {
    const r = await fn();
    stages.push({ name, seconds: (Date.now() - s) / 1000, ok: true });
    log(`== ${name}: ${((Date.now() - s) / 1000).toFixed(1)}s`);
    return r;
  } catch (e) {
    stages.push({ name, seconds: (Date.now() - s) / 1000, ok: false });
    log(`== ${name}: FAILED after ${((Date.now() - s) / 1000).toFixed(1)}s`);
    throw e;
  }
}

/** The children sh() has running, so that a signal handler can end them (killChildren). */
const children = new Set();

/**
 * Runs a command with inherited stdio (or its stdout captured); resolves with its exit code. Each
 * child leads a process group of its own, so that killChildren reaches what it started too (npx
 * does not pass SIGTERM on to jest). `opts.output`, a file descriptor, takes what would have gone
 * to the terminal (a background build's progress, kept out of a lab test run's).
 */
export function sh(cmd, args, opts = {}) {
  return new Promise((resolve, reject) => {
    const to = opts.output ?? "inherit";
    const child = spawn(cmd, args, { stdio: [opts.capture ? "ignore" : "inherit", opts.capture ? "pipe" : to, to], env: { ...process.env, ...(opts.env ?? {}) }, cwd: opts.cwd, detached: true });
    children.add(child);
    let out = "";
    if (opts.capture) child.stdout.on("data", (b) => (out += b));
    child.on("error", (e) => {
      children.delete(child);
      reject(e);
    });
    child.on("close", (code) => {
      children.delete(child);
      resolve(opts.capture ? { code, out } : code);
    });
  });
}

/**
 * SIGTERM to every child sh() has running (a `lab up` still packing, a jest run): under CI a
 * signal reaches this process only, and a child left behind would boot a lab nobody takes down.
 */
export function killChildren() {
  for (const c of children) {
    try {
      process.kill(-c.pid, "SIGTERM");
    } catch {
      c.kill("SIGTERM"); // its group is gone already: the child alone, if it is still there
    }
  }
}

export async function mustSh(cmd, args, opts = {}) {
  const r = await sh(cmd, args, opts);
  const code = typeof r === "number" ? r : r.code;
  if (code !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${code}`);
  return r;
}

/**
 * The lab stacks npm test runs, in order, each with the lab test files it runs there. Unset
 * FASTSUSPEND_STACK: every verified file on bookworm, then the core suites on trixie (issue 17:
 * both Debian releases in every run, within CI's time). FASTSUSPEND_STACK=bookworm|trixie: that
 * stack alone, every verified file. Checked against the lab's stacks (STACKS in
 * packages/lab/src/pins.ts, whose CLI checks again) before anything is built, so that a typo fails
 * in the first second rather than after the build.
 */
export const LAB_STACKS = ["bookworm", "trixie"];
export function labPlan(env = process.env) {
  const s = env.FASTSUSPEND_STACK || "";
  if (s === "") return [{ stack: "bookworm", files: "verified" }, { stack: "trixie", files: "core" }];
  if (!LAB_STACKS.includes(s)) throw new Error(`FASTSUSPEND_STACK=${JSON.stringify(s)} is not a lab stack: set it to ${LAB_STACKS.join(" or ")}, or unset it for both (bookworm, then trixie's core suites)`);
  return [{ stack: s, files: "verified" }];
}

/** `--stack S` for the lab CLI; nothing for bookworm, so that its command lines are the ones from before stacks. */
export function labStackArgs(stack) {
  return stack === "bookworm" ? [] : ["--stack", stack];
}

/**
 * One results file, read once: its counts, and its failed tests, each with the head of its first
 * failure message (printed again at the end, where a CI log cut in the middle still shows them).
 * Only Jest's (or the series check's) results count: dom0's results dir also holds benchmark
 * numbers (daemon-load.json), whose missing fields once turned the totals into NaN.
 */
export function tally(file) {
  const none = { passed: 0, failed: 0, skipped: 0, failures: [] };
  if (!existsSync(file)) return none;
  const j = JSON.parse(readFileSync(file, "utf8"));
  if (typeof j.numPassedTests !== "number" || typeof j.numFailedTests !== "number") return none;
  const out = [];
  const head = (m) => String(m ?? "").replace(/\x1b\[[0-9;]*m/g, "").split("\n").filter((l) => l.trim() !== "").slice(0, 12).join("\n      ");
  for (const suite of Array.isArray(j.testResults) ? j.testResults : []) {
    const where = String(suite.name ?? "").replace(`${process.cwd()}/`, "");
    const failed = (suite.assertionResults ?? []).filter((a) => a.status === "failed");
    for (const a of failed) out.push(`${where} › ${a.fullName}\n      ${head(a.failureMessages?.[0])}`);
    // A suite that failed outside its tests (a beforeAll, a syntax error) has its message on the suite.
    if (failed.length === 0 && suite.status === "failed") out.push(`${where}\n      ${head(suite.message)}`);
  }
  return {
    passed: j.numPassedTests,
    failed: j.numFailedTests + (j.numRuntimeErrorTestSuites ?? 0),
    skipped: (j.numPendingTests ?? 0) + (j.numTodoTests ?? 0),
    failures: out,
  };
}

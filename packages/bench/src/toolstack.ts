// What users run, measured by the guest (issue 14): `xl save -c` on a guest with the stock kernel
// and on one with the patched kernel, side by side in one lab. dom0 times each xl run and marks
// when libxl issued the suspend request and saw the guest suspended (its -vvv debug lines, time-
// stamped as they arrive: `xl -T` stamps whole seconds only); the guest's blackout probe reports
// how long its user space could not run, matched to each run by wall clock; the guest's phases
// probe (patched kernel only) its own suspend and resume.
import { summarize } from "@fastsuspend/coordinator";
import type { ToolstackResult } from "@fastsuspend/cli";
import { blackout, guestSuspends, type BlackoutGap, type GuestType, type Lab } from "@fastsuspend/lab";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { summarizeGuestPhases } from "./guest-phases";

/** One toolstack run as dom0 saw it. */
export interface XlRun {
  startRealMs: number;
  endRealMs: number;
  /** xl's whole run. */
  ms: number;
  code: number;
  /** ms after xl started: "request" (suspend request issued), "suspended" (libxl saw it). */
  marks: { request?: number; suspended?: number };
  tail?: string;
}

// Runs in dom0: `xl -vvv ARGS...` N times (save -c, migrate), one JSON line per run.
const XL_TIMED = `
const { spawn } = require("child_process");
const [n, ...xlArgs] = process.argv.slice(2);
const PATTERNS = [["request", /issuing .* suspend request/], ["suspended", /guest has suspended/]];
function once() {
  return new Promise((done) => {
    const t0 = process.hrtime.bigint();
    const startRealMs = Date.now();
    const p = spawn("xl", ["-vvv", ...xlArgs], { stdio: ["ignore", "ignore", "pipe"] });
    const marks = {};
    let buf = "";
    let all = "";
    p.stderr.on("data", (d) => {
      const t = Number(process.hrtime.bigint() - t0) / 1e6;
      buf += d;
      all += d;
      let i;
      while ((i = buf.indexOf("\\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        for (const [k, re] of PATTERNS) if (marks[k] === undefined && re.test(line)) marks[k] = t;
      }
    });
    p.on("close", (code) => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      console.log(JSON.stringify({ startRealMs, endRealMs: Date.now(), ms, code: code ?? -1, marks, ...(code ? { tail: all.slice(-600) } : {}) }));
      done();
    });
  });
}
(async () => { for (let i = 0; i < Number(n); i++) { await once(); await new Promise((r) => setTimeout(r, 500)); } })();
`;

/** The runs' JSON lines from the dom0 script's output. */
export function parseXlRuns(stdout: string): XlRun[] {
  return stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as XlRun);
}

/** Each run's blackout: the probe's gaps that began inside the run (± slack), summed. */
export function blackoutPerRun(runs: readonly XlRun[], gaps: readonly BlackoutGap[], slackMs = 100): number[] {
  return runs.map((r) => gaps.filter((g) => g.atRealMs >= r.startRealMs - slackMs && g.atRealMs <= r.endRealMs + slackMs).reduce((s, g) => s + g.bootMs, 0));
}

export function summarizeXlRuns(tool: string, guestKernel: string, hypervisor: string, runs: readonly XlRun[], blackouts: readonly number[]): ToolstackResult {
  const ok = runs.filter((r) => r.code === 0);
  const between = (a: "request" | undefined, b: "request" | "suspended" | undefined): number[] =>
    ok.flatMap((r) => {
      const from = a === undefined ? 0 : r.marks[a];
      const to = b === undefined ? r.ms : r.marks[b];
      return from === undefined || to === undefined ? [] : [to - from];
    });
  return {
    tool, guestKernel, hypervisor, n: runs.length, ok: ok.length, failed: runs.length - ok.length,
    blackoutMs: summarize(runs.flatMap((r, i) => (r.code === 0 ? [blackouts[i] ?? 0] : []))),
    totalMs: summarize(ok.map((r) => r.ms)),
    phases: { setupMs: summarize(between(undefined, "request")), suspendMs: summarize(between("request", "suspended")), saveAndResumeMs: summarize(ok.flatMap((r) => (r.marks.suspended === undefined ? [] : [r.ms - r.marks.suspended]))) },
    errors: runs.filter((r) => r.code !== 0).slice(0, 3).map((r) => `xl exited ${r.code}: ${r.tail ?? ""}`),
  };
}

export interface ToolstackOptions {
  runs: number;
  hypervisor: string;
  log: (line: string) => void;
}

export interface ToolstackKernel { path: string; desc: string; name: string }

/** A guest for the toolstack rows: booted with the blackout probe on, past the probe's noise floor. */
export async function toolstackGuest(l: Lab, kernel: ToolstackKernel, type: GuestType, log: (line: string) => void): Promise<number> {
  const g = await l.createGuest({ name: kernel.name, kernel: kernel.path, type, extra: "fastsuspend.blackout=on" });
  writeFileSync(join(l.runDir, "share", "xl-timed.js"), XL_TIMED);
  // The probe's first seconds are its noise floor (no suspends then); then a clean window.
  await new Promise((r) => setTimeout(r, 11_000));
  const floor = await blackout(l, kernel.name);
  await guestSuspends(l, kernel.name).catch(() => []);
  log(`${kernel.desc} ${type} guest "${kernel.name}" is domain ${g.domid}; blackout probe floor p99 ${floor.floor.p99Us} us, max ${floor.floor.maxUs} us`);
  return g.domid;
}

/**
 * `xl -vvv ARGS` x runs on the guest (ARGS name it, by name: a migration changes its domid),
 * each run's blackout from the guest's probe: one row of the toolstack table.
 */
export async function xlRepeatedRow(l: Lab, kernel: ToolstackKernel, tool: string, xlArgs: string[], o: ToolstackOptions & { guestType?: GuestType }): Promise<ToolstackResult> {
  const r = await l.exec(["node", "/lab/xl-timed.js", String(o.runs), ...xlArgs], { timeoutMs: o.runs * 120_000 });
  const runs = parseXlRuns(r.stdout);
  const report = await blackout(l, kernel.name);
  const guestMs = await guestSuspends(l, kernel.name).then(summarizeGuestPhases, () => undefined);
  const row = { ...summarizeXlRuns(tool, kernel.desc, o.hypervisor, runs, blackoutPerRun(runs, report.gaps)), ...(o.guestType === undefined ? {} : { guestType: o.guestType }) };
  o.log(`${tool} on ${kernel.desc}${o.guestType === undefined ? "" : ` ${o.guestType}`}: ${row.ok}/${row.n} ok, total median ${row.totalMs.median.toFixed(0)} ms, guest blackout median ${row.blackoutMs.median.toFixed(1)} ms`);
  return guestMs === undefined ? row : { ...row, guestMs };
}

/**
 * `xl save -c` x N on a fresh PV guest with `kernel` (booted with the blackout probe on): the row
 * for the toolstack table. The guest is destroyed afterwards.
 */
export async function xlSaveRow(l: Lab, kernel: ToolstackKernel, o: ToolstackOptions): Promise<ToolstackResult> {
  await toolstackGuest(l, kernel, "pv", o.log);
  try {
    return await xlRepeatedRow(l, kernel, "xl save -c", ["save", "-c", kernel.name, "/dev/null"], o);
  } finally {
    await l.destroyGuest(kernel.name).catch(() => undefined);
  }
}

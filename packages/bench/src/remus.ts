// `xl remus -b` (blackhole: memory copied every checkpoint, sent nowhere) on a guest for a fixed
// time, measured by the guest (issue 14): checkpoints per second, each checkpoint's blackout from
// the guest's probe, and libxl's request -> suspended per checkpoint from its -vvv lines.
import { summarize } from "@fastsuspend/coordinator";
import type { ToolstackResult } from "@fastsuspend/cli";
import { blackout, type BlackoutGap, type GuestType, type Lab } from "@fastsuspend/lab";
import { writeFileSync } from "node:fs";
import { join } from "node:path";

import type { ToolstackKernel, ToolstackOptions } from "./toolstack";

/** One `xl remus` run as dom0 saw it: ms after xl started for each request and each suspended line. */
export interface RemusRun {
  startRealMs: number;
  endRealMs: number;
  ms: number;
  code: number;
  requests: number[];
  suspended: number[];
  tail: string;
}

// Runs in dom0: `timeout -s TERM S xl -vvv remus -F -b -n -d -i MS NAME dummy`, one JSON line.
// SIGTERM: a non-interactive shell starts background jobs with SIGINT ignored (docs/results.md).
const REMUS_TIMED = `
const { spawn } = require("child_process");
const [secs, ms, name] = process.argv.slice(2);
const t0 = process.hrtime.bigint();
const startRealMs = Date.now();
const p = spawn("timeout", ["-s", "TERM", secs, "xl", "-vvv", "remus", "-F", "-b", "-n", "-d", "-i", ms, name, "dummy"], { stdio: ["ignore", "ignore", "pipe"] });
const requests = [], suspended = [];
let buf = "", tail = "";
p.stderr.on("data", (d) => {
  const t = Number(process.hrtime.bigint() - t0) / 1e6;
  buf += d;
  tail = (tail + d).slice(-600);
  let i;
  while ((i = buf.indexOf("\\n")) >= 0) {
    const line = buf.slice(0, i);
    buf = buf.slice(i + 1);
    if (/issuing .* suspend request/.test(line)) requests.push(t);
    else if (/guest has suspended/.test(line)) suspended.push(t);
  }
});
p.on("close", (code) => {
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  console.log(JSON.stringify({ startRealMs, endRealMs: Date.now(), ms, code: code ?? -1, requests, suspended, tail }));
});
`;

/** libxl's request -> suspended for each checkpoint that got both lines, in order. */
export function requestToSuspended(run: RemusRun): number[] {
  const out: number[] = [];
  let j = 0;
  for (const [i, req] of run.requests.entries()) {
    const next = run.requests[i + 1] ?? Number.POSITIVE_INFINITY;
    while (j < run.suspended.length && (run.suspended[j] ?? 0) < req) j++;
    const s = run.suspended[j];
    if (s !== undefined && s < next) out.push(s - req);
  }
  return out;
}

/** The row: one per remus run; n checkpoints issued, blackout per checkpoint (the probe's gaps in the run). */
export function summarizeRemus(tool: string, kernel: string, hypervisor: string, guestType: GuestType, run: RemusRun, gaps: readonly BlackoutGap[]): ToolstackResult {
  const inRun = gaps.filter((g) => g.atRealMs >= run.startRealMs && g.atRealMs <= run.endRealMs).map((g) => g.bootMs);
  const periods = run.requests.slice(1).map((t, i) => t - (run.requests[i] ?? t));
  const toSuspended = requestToSuspended(run);
  const first = run.requests[0];
  const last = run.requests.at(-1);
  const resumed = run.requests.slice(1).flatMap((req, i) => {
    const s = run.suspended.find((x) => x >= (run.requests[i] ?? 0) && x < req);
    return s === undefined ? [] : [req - s];
  });
  // timeout(1) exits 124 when it had to stop xl: the expected end of a blackhole run.
  const errors = run.code === 0 || run.code === 124 ? [] : [`xl remus exited ${run.code}: ${run.tail}`];
  return {
    tool, guestKernel: kernel, hypervisor, guestType,
    n: run.requests.length, ok: toSuspended.length, failed: run.requests.length - toSuspended.length,
    blackoutMs: summarize(inRun),
    // Checkpoint period: one request to the next.
    totalMs: summarize(periods),
    phases: {
      setupMs: summarize(first === undefined ? [] : [first]),
      suspendMs: summarize(toSuspended),
      // Suspended -> the next request: memory copy, resume, the interval.
      saveAndResumeMs: summarize(resumed),
    },
    perSecond: first === undefined || last === undefined || last === first ? 0 : ((run.requests.length - 1) * 1000) / (last - first),
    errors,
  };
}

/**
 * `xl remus -b -i intervalMs` on the guest for `seconds`. A guest libxl leaves suspended when it
 * is stopped is resumed with `fastsuspend resume` (said in the row's errors: a user would have to).
 */
export async function xlRemusRow(l: Lab, kernel: ToolstackKernel, guestType: GuestType, intervalMs: number, seconds: number, o: ToolstackOptions): Promise<ToolstackResult> {
  writeFileSync(join(l.runDir, "share", "remus-timed.js"), REMUS_TIMED);
  await blackout(l, kernel.name); // clears the probe's table: the row sees this run's gaps only
  const r = await l.exec(["node", "/lab/remus-timed.js", String(seconds), String(intervalMs), kernel.name], { timeoutMs: (seconds + 120) * 1000 });
  const line = r.stdout.split("\n").find((x) => x.startsWith("{"));
  if (line === undefined) throw new Error(`xl remus: no result (exit ${r.code}): ${r.stderr.slice(-300)}`);
  const run = JSON.parse(line) as RemusRun;
  const report = await blackout(l, kernel.name);
  const row = summarizeRemus(`xl remus -b -i ${intervalMs}`, kernel.desc, o.hypervisor, guestType, run, report.gaps);
  const state = (await l.exec(`xl list ${kernel.name} | awk 'NR==2{print $5}'`)).stdout.trim();
  if (state.includes("s")) {
    const res = await l.exec(["node", "/fastsuspend/packages/cli/dist/main.js", "resume", kernel.name, "--no-daemon"]);
    row.errors.push(`xl remus left the guest suspended (${state}); fastsuspend resume: exit ${res.code}`);
  } else if (!/^[r-][b-]-{4}$/.test(state)) row.errors.push(`guest state after xl remus: ${state || "gone"}`);
  o.log(`${row.tool} on ${kernel.desc} ${guestType} for ${seconds} s: ${row.n} checkpoints (${(row.perSecond ?? 0).toFixed(1)}/s), blackout median ${row.blackoutMs.median.toFixed(1)} ms (p99 ${row.blackoutMs.p99.toFixed(1)}), request -> suspended median ${row.phases.suspendMs.median.toFixed(1)} ms${row.errors.length > 0 ? `; ${row.errors.join("; ")}` : ""}`);
  return row;
}

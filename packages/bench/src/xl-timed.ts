// Timing real xl runs from dom0 (issue 14): one script for every toolstack row. It runs
// `xl -vvv ARGS` (save -c, migrate, remus), timestamps libxl's debug lines as they arrive (`xl -T`
// stamps whole seconds only): each "issuing ... suspend request" and each "guest has suspended";
// a run given a duration is stopped with SIGTERM when it is over (xl remus runs until stopped).
// One JSON line per run. The script goes to dom0 as /lab/xl-timed.js.
import { writeFileSync } from "node:fs";
import { join } from "node:path";

import type { Lab } from "@fastsuspend/lab";

/** One xl run as dom0 saw it; times are ms after xl started. */
export interface XlRun {
  startRealMs: number;
  endRealMs: number;
  /** xl's whole run. */
  ms: number;
  /** xl's exit code, or null when a signal ended it. */
  code: number | null;
  signal: string | null;
  /** Set when the script stopped xl (its duration was over): SIGTERM sent this many ms after the start. */
  stoppedAtMs?: number;
  /** libxl issued the suspend request (one per checkpoint under remus). */
  requests: number[];
  /** libxl saw the guest suspended. */
  suspended: number[];
  /** The end of xl's stderr, for a run that did not end well. */
  tail?: string;
}

// SIGTERM, not SIGINT: xl run from a non-interactive shell may have SIGINT ignored (docs/results.md).
const SCRIPT = `
const { spawn } = require("child_process");
const [runs, secs, ...xlArgs] = process.argv.slice(2);
function once() {
  return new Promise((done) => {
    const t0 = process.hrtime.bigint();
    const now = () => Number(process.hrtime.bigint() - t0) / 1e6;
    const run = { startRealMs: Date.now(), requests: [], suspended: [] };
    const p = spawn("xl", ["-vvv", ...xlArgs], { stdio: ["ignore", "ignore", "pipe"] });
    const stop = Number(secs) > 0 ? setTimeout(() => { run.stoppedAtMs = now(); p.kill("SIGTERM"); }, Number(secs) * 1000) : undefined;
    let buf = "", tail = "";
    p.stderr.on("data", (d) => {
      const t = now();
      buf += d;
      tail = (tail + d).slice(-600);
      let i;
      while ((i = buf.indexOf("\\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (/issuing .* suspend request/.test(line)) run.requests.push(t);
        else if (/guest has suspended/.test(line)) run.suspended.push(t);
      }
    });
    p.on("close", (code, signal) => {
      clearTimeout(stop);
      console.log(JSON.stringify({ ...run, endRealMs: Date.now(), ms: now(), code, signal, ...(code === 0 ? {} : { tail }) }));
      done();
    });
  });
}
(async () => { for (let i = 0; i < Number(runs); i++) { await once(); await new Promise((r) => setTimeout(r, 500)); } })();
`;

/** The runs' JSON lines from the script's output. */
export function parseXlRuns(stdout: string): XlRun[] {
  return stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as XlRun);
}

/** A run ended as meant: exit 0, or stopped by the script and ended by that SIGTERM (or exiting on it). */
export function xlRunOk(r: XlRun): boolean {
  if (r.code === 0) return true;
  return r.stoppedAtMs !== undefined && (r.signal === "SIGTERM" || r.code === 128 + 15);
}

/** What went wrong with a run, for the row's errors; undefined for a run that ended as meant. */
export function xlRunError(r: XlRun): string | undefined {
  if (xlRunOk(r)) return undefined;
  return `xl ${r.signal === null ? `exited ${r.code ?? "?"}` : `killed by ${r.signal}`}: ${(r.tail ?? "").trim().split("\n").slice(-3).join(" | ")}`;
}

/**
 * `xl -vvv XLARGS` `runs` times in dom0, one after another (half a second apart), each stopped
 * after `seconds` if that is over 0. `timeoutMs` bounds the whole.
 */
export async function xlTimed(l: Lab, runs: number, seconds: number, xlArgs: readonly string[], timeoutMs: number): Promise<XlRun[]> {
  writeFileSync(join(l.runDir, "share", "xl-timed.js"), SCRIPT);
  const r = await l.exec(["node", "/lab/xl-timed.js", String(runs), String(seconds), ...xlArgs], { timeoutMs });
  const out = parseXlRuns(r.stdout);
  if (out.length === 0) throw new Error(`xl ${xlArgs.join(" ")}: no result (exit ${r.code}${r.timedOut ? ", timed out" : ""}): ${r.stderr.slice(-300)}`);
  return out;
}

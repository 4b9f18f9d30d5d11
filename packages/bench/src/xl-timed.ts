// Timing real xl runs from dom0 (issue 14): one script for every toolstack row. It runs
// `xl -vvv ARGS` (save -c, migrate, remus), timestamps libxl's debug lines as they arrive (`xl -T`
// stamps whole seconds only): each "issuing ... suspend request", each "guest has suspended", and
// each progress line of the save helper at 100% (a pass over memory sent in full);
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
  /**
   * The save helper's progress reached 100%: a pass over memory sent. The first one after a
   * "suspended" mark is the end of that suspend's memory (libxc's send_dirty_pages(); a live
   * migration's earlier rounds come before the mark).
   */
  memoryDone: number[];
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
    const run = { startRealMs: Date.now(), requests: [], suspended: [], memoryDone: [] };
    const p = spawn("xl", ["-vvv", ...xlArgs], { stdio: ["ignore", "ignore", "pipe"] });
    const stop = Number(secs) > 0 ? setTimeout(() => { run.stoppedAtMs = now(); p.kill("SIGTERM"); }, Number(secs) * 1000) : undefined;
    let buf = "", tail = "";
    p.stderr.on("data", (d) => {
      const t = now();
      buf += d;
      tail = (tail + d).slice(-600);
      let i;
      // A progress line may end in a carriage return (xentoollog's stdio logger on a terminal).
      while ((i = buf.search(/[\\r\\n]/)) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (/issuing .* suspend request/.test(line)) run.requests.push(t);
        else if (/guest has suspended/.test(line)) run.suspended.push(t);
        else if (/xc: progress: .*100%/.test(line)) run.memoryDone.push(t);
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

/** The first of `marks` in [from, before): the mark that belongs to the step begun at `from`. */
export function firstMark(marks: readonly number[], from: number | undefined, before = Number.POSITIVE_INFINITY): number | undefined {
  return from === undefined ? undefined : marks.find((t) => t >= from && t < before);
}

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

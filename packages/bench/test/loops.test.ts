// The checkpoint loops after bench-run, against a fake dom0: which guest, which flags, what is kept.
import type { CheckpointLoopResult } from "@fastsuspend/cli";
import type { ExecOptions, ExecResult } from "@fastsuspend/lab";

import { checkpointLoops, type Dom0Exec } from "../src/bench";

interface Call { argv: string[]; opts: ExecOptions }

/**
 * dom0 answering `fastsuspend checkpoint ... --json` as the CLI does on oxenstored (auto resolves
 * to skip), with the loop `--for` stopped.
 */
function fakeDom0(stdout: (argv: string[]) => string = checkpointJson): Dom0Exec & { calls: Call[] } {
  const calls: Call[] = [];
  return {
    calls,
    exec: (cmd: string | string[], opts: ExecOptions = {}): Promise<ExecResult> => {
      const argv = typeof cmd === "string" ? [cmd] : cmd;
      calls.push({ argv, opts });
      return Promise.resolve({ code: 0, signal: null, stdout: stdout(argv), stderr: "", timedOut: false, ms: 1 });
    },
  };
}

function checkpointJson(argv: string[]): string {
  const flag = (name: string): string | undefined => argv[argv.indexOf(name) + 1];
  const count = Number(flag("--count"));
  const timed = argv.includes("--for");
  const ok = timed ? 2500 : count;
  const totalMs = { n: ok, avg: 30, min: 20, max: 40, median: 30, p99: 39 };
  return `${JSON.stringify({
    domid: Number(argv[3]), path: "xenstore+evtchn", xsResume: flag("--xs-resume") === "auto" ? "skip" : flag("--xs-resume"), requested: count, ok, failed: 0, stoppedBy: timed ? "time" : "count",
    errors: [], suspendMs: totalMs, resumeMs: totalMs, totalMs, elapsedMs: 60000, cyclesPerSecond: ok / 60,
    totalMsPerHundred: [30, 31], totalMsPerThousand: timed ? [30, 31, 32] : [30.5], ...(timed ? { budgetSeconds: Number(flag("--for")) } : {}),
  })}\n`;
}

const options = (over: Partial<Parameters<typeof checkpointLoops>[2]> = {}): Parameters<typeof checkpointLoops>[2] & { lines: string[] } => {
  const lines: string[] = [];
  return { checkpointCount: 1000, longCount: 10000, longSeconds: 600, log: (l) => lines.push(l), lines, ...over };
};

describe("the bench's checkpoint loops", () => {
  it("runs all three on the guest that served the paths: XS_RESUME auto, inline, then the long loop (auto) with its budget; each keeps the mode in effect", async () => {
    const dom0 = fakeDom0();
    const o = options();
    const loops = await checkpointLoops(dom0, 7, o);
    expect(dom0.calls.map((c) => c.argv.slice(2, 4))).toEqual([["checkpoint", "7"], ["checkpoint", "7"], ["checkpoint", "7"]]);
    expect(dom0.calls.map((c) => c.argv.slice(4).join(" "))).toEqual([
      "--interval 0 --count 1000 --timeout 20000 --xs-resume auto --json",
      "--interval 0 --count 1000 --timeout 20000 --xs-resume inline --json",
      "--interval 0 --count 10000 --for 600 --timeout 20000 --xs-resume auto --json",
    ]);
    // The long loop's exec outlives its budget, so the loop stops itself and prints its JSON.
    expect(dom0.calls[2]?.opts.timeoutMs).toBe(600_000 + 120_000);
    expect(loops.map((c) => [c.xsResume, c.long ?? false])).toEqual([["skip", false], ["inline", false], ["skip", true]]);
    expect(loops[2]).toMatchObject<Partial<CheckpointLoopResult>>({
      requested: 10000, ok: 2500, stoppedBy: "time", budgetSeconds: 600, totalMsPerThousand: [30, 31, 32], totalMsPerHundred: [30, 31],
    });
    expect(loops[0]).toMatchObject<Partial<CheckpointLoopResult>>({ stoppedBy: "count", totalMsPerThousand: [30.5] });
    expect(loops[0]).not.toHaveProperty("budgetSeconds");
    // What the results keep: not the CLI's suspend/resume statistics.
    expect(loops[0]).not.toHaveProperty("suspendMs");
    expect(o.lines.at(-1)).toMatch(/^long checkpoint loop \(default guest\): 2500 of 10000 cycles \(0 failed\) in 60\.0 s, stopped by its 600 s budget$/);
  });

  it("says when the long loop finished within its budget", async () => {
    const finished = (argv: string[]): string => checkpointJson(argv.filter((a, i) => a !== "--for" && argv[i - 1] !== "--for"));
    const o = options({ checkpointCount: 0, longCount: 500 });
    const loops = await checkpointLoops(fakeDom0(finished), 7, o);
    expect(loops).toHaveLength(1);
    expect(loops[0]).toMatchObject({ long: true, ok: 500, stoppedBy: "count", budgetSeconds: 600 });
    expect(o.lines.at(-1)).toMatch(/500 of 500 cycles .*, not stopped by its 600 s budget$/);
  });

  it("skips the sustained-rate loops with --checkpoint-count 0 and the long one with --long-count 0", async () => {
    const none = fakeDom0();
    expect(await checkpointLoops(none, 7, options({ checkpointCount: 0, longCount: 0 }))).toEqual([]);
    expect(none.calls).toHaveLength(0);
    const short = fakeDom0();
    expect((await checkpointLoops(short, 7, options({ longCount: 0 }))).map((c) => c.long ?? false)).toEqual([false, false]);
    expect(short.calls.some((c) => c.argv.includes("--for"))).toBe(false);
  });

  it("fails with dom0's stderr when the loop printed no JSON", async () => {
    const broken: Dom0Exec = { exec: () => Promise.resolve({ code: 2, signal: null, stdout: "", stderr: "fastsuspend: --for must be at least 1", timedOut: false, ms: 1 }) };
    await expect(checkpointLoops(broken, 7, options())).rejects.toThrow(/checkpoint loop exited 2 without its JSON: fastsuspend: --for must be at least 1/);
  });
});

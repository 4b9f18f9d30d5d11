// The phases probe off the lab: guest-phases.c compiled and run on a saved trace (tracefs's text
// format, as a 6.1 guest with patch 0005 writes it), and its block read by parsePhases.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parsePhases, parsePhasesLine } from "../src/phases";
import { assetsDir } from "../src/paths";

const ev = (t: string, action: string, val: number, be: "begin" | "end", task = "xenwatch-14") =>
  `${task.padStart(16)}      [000] .....   ${t}: suspend_resume: ${action}[${val}] ${be}`;

// Two cancelled suspends over the channel, with a PM step outside any suspend and a spurious
// control/shutdown request read before the second (it must not count as the second's request).
const TRACE = [
  "# tracer: nop",
  "#",
  ev("10.000000", "dpm_prepare", 16, "begin"),
  ev("10.000100", "dpm_prepare", 16, "end"),
  ev("100.000100", "xen_suspend_request", 1, "begin", "<idle>-0"),
  ev("100.000300", "xen_suspend_request", 0, "begin"),
  ev("100.000400", "xen_do_suspend", 0, "begin"),
  ev("100.000500", "freeze_processes", 0, "begin"),
  ev("100.002500", "freeze_processes", 0, "end"),
  ev("100.003000", "dpm_suspend", 16, "begin"),
  ev("100.004000", "dpm_suspend", 16, "end"),
  ev("100.005000", "xen_suspend_hypercall", 0, "begin", "migration/0-11"),
  ev("100.015000", "xen_suspend_hypercall", 1, "end", "migration/0-11"),
  ev("100.016000", "thaw_processes", 0, "begin"),
  ev("100.019000", "thaw_processes", 0, "end"),
  ev("100.019500", "xen_do_suspend", 0, "end"),
  ev("100.100000", "xen_suspend_request", 1, "begin", "<idle>-0"),
  ev("100.100300", "xen_do_suspend", 0, "begin"),
  ev("100.101000", "xen_suspend_hypercall", 0, "begin", "migration/0-11"),
  ev("100.102000", "xen_suspend_hypercall", 0, "end", "migration/0-11"),
  ev("100.103000", "xen_do_suspend", 1, "end"),
].join("\n");

describe("guest-phases (compiled on the host)", () => {
  let dir = "";
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "phases-"));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  test("turns a trace into one line per suspend that parsePhases reads", () => {
    const bin = join(dir, "phases");
    const cc = spawnSync("gcc", ["-static", "-Os", "-s", "-Wall", "-Werror", "-o", bin, join(assetsDir, "guest-phases.c")], { encoding: "utf8" });
    expect(cc.stderr).toBe("");
    expect(cc.status).toBe(0);
    writeFileSync(join(dir, "trace"), TRACE + "\n");
    const run = spawnSync(bin, ["--file", join(dir, "trace")], { encoding: "utf8", timeout: 20_000 });
    expect(run.status).toBe(0);
    const r = parsePhases(run.stdout, "file");
    expect(r).toHaveLength(2);
    const [a, b] = r ?? [];
    expect(a).toEqual({
      source: 1, cancelled: true, restored: false, frozen: true, devicePasses: true, clockSteppedBack: false, requestMs: 0.3, suspendMs: 4.9, resumeMs: 4.5, totalMs: 19.4,
      steps: { freeze_processes: 2, dpm_suspend: 1, thaw_processes: 3 },
    });
    expect(b).toMatchObject({ source: 1, cancelled: false, restored: true, frozen: false, devicePasses: false, requestMs: 0.3, suspendMs: 1, resumeMs: 1, steps: {} });
  });

  test("refuses an unknown option and a bad buffer size", () => {
    const bin = join(dir, "phases");
    expect(spawnSync(bin, ["--nope"], { encoding: "utf8" }).status).toBe(2);
    expect(spawnSync(bin, ["--buffer-kb", "1"], { encoding: "utf8" }).status).toBe(2);
  });
});

describe("parsePhases", () => {
  const cyc = "PHASES-CYC src=0 cancelled=1 restored=0 request_us=na suspend_us=12000 resume_us=15000 total_us=30000 xs_resume=9000";
  test("a block whose count matches", () => {
    const text = `noise\nPHASES-BEGIN req=a seq=1 clock=local lost=0\n${cyc}\r\n[  1.0] kernel line\nPHASES-END req=a seq=1 count=1\n`;
    const r = parsePhases(text, "a");
    expect(r).toHaveLength(1);
    expect(r?.[0]?.requestMs).toBeUndefined();
    expect(r?.[0]?.steps).toEqual({ xs_resume: 9 });
  });
  test("undefined until the END line, or when another block cut it off", () => {
    expect(parsePhases(`PHASES-BEGIN req=a seq=1\n${cyc}\n`, "a")).toBeUndefined();
    expect(parsePhases(`PHASES-BEGIN req=a seq=1\n${cyc}\nPHASES-BEGIN req=b seq=2\n`, "a")).toBeUndefined();
  });
  test("a line the kernel printed into (CI: \"xs_resume=38[   20.05] ...\", the rest on the next line) is joined back", () => {
    const split = "PHASES-CYC src=1 cancelled=1 restored=0 request_us=100 suspend_us=1200 resume_us=900 total_us=2500 xs_resume=38";
    const text = `PHASES-BEGIN req=a seq=1\n${split}[   20.050296] blkfront: xvdb: barrier or flush: disabled\n1 thaw_processes=700\n${cyc}\nPHASES-END req=a seq=1 count=2\n`;
    const r = parsePhases(text, "a");
    expect(r).toHaveLength(2);
    expect(r?.[0]?.steps).toEqual({ xs_resume: 0.381, thaw_processes: 0.7 });
    expect(r?.[1]?.steps).toEqual({ xs_resume: 9 });
    // Without the kernel's timestamp it is still garbage, and said so.
    expect(() => parsePhases(`PHASES-BEGIN req=a seq=1\n${split}[oops\nPHASES-END req=a seq=1 count=1\n`, "a")).toThrow(/bad step xs_resume=38\[oops/);
  });
  test("a line that ended where the kernel's message began (CI: \"thaw_processes=9491[ 2164.91] ...\", the probe's next line after it) keeps its fields", () => {
    const whole = "PHASES-CYC src=1 cancelled=1 restored=0 request_us=100 suspend_us=1200 resume_us=900 total_us=2500 thaw_processes=9491";
    const text = `PHASES-BEGIN req=a seq=1\n${whole}[ 2164.919004] hrtimer: interrupt took 10089521 ns\n${cyc}\nPHASES-END req=a seq=1 count=2\n`;
    const r = parsePhases(text, "a");
    expect(r?.map((s) => s.steps)).toEqual([{ thaw_processes: 9.491 }, { xs_resume: 9 }]);
    // ... and when a line that is not the probe's follows (another kernel message), not joined either.
    const next = `PHASES-BEGIN req=a seq=1\n${whole}[ 2164.919004] hrtimer: interrupt took 10089521 ns\n[ 2165.000001] blkfront: reconnect\n${cyc}\nPHASES-END req=a seq=1 count=2\n`;
    expect(parsePhases(next, "a")?.map((s) => s.steps)).toEqual([{ thaw_processes: 9.491 }, { xs_resume: 9 }]);
  });
  test("a lost line is an error, not a short answer", () => {
    expect(() => parsePhases(`PHASES-BEGIN req=a seq=1\n${cyc}\nPHASES-END req=a seq=1 count=2\n`, "a")).toThrow(/1 lines for count=2/);
  });
  test("a span the kernel did not trace (a kernel without 0005) is an error", () => {
    expect(() => parsePhasesLine(cyc.replace("suspend_us=12000", "suspend_us=na"))).toThrow(/0005/);
  });
  test("a negative step (the guest's clock stepped back, as the lab saw) marks the suspend, it does not throw", () => {
    expect(parsePhasesLine(cyc).clockSteppedBack).toBe(false);
    const s = parsePhasesLine(`${cyc} dpm_suspend_noirq=-11155`);
    expect(s.clockSteppedBack).toBe(true);
    expect(s.steps.dpm_suspend_noirq).toBeCloseTo(-11.155);
  });
});

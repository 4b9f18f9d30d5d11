// The blackout probe off the lab: its block's parser, and the probe itself compiled and run on the
// host (any Linux: no xenbus there, it prints its block at the end of --run).
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseBlackout } from "../src/blackout";
import { assetsDir } from "../src/paths";

const block = (req: string, seq: number, gaps: string[], count = gaps.filter((g) => g.startsWith("BLACKOUT-GAP")).length) => [
  "",
  `BLACKOUT-BEGIN req=${req} seq=${seq} clock=boottime clocksource=xen sleep_us=1000 threshold_us=3000 floor_s=10 now_boot_ms=50000.000 count=${count} dropped=0`,
  ...gaps,
  "BLACKOUT-HIST name=floor from_ms=1000.000 to_ms=11000.000 samples=9000 p50_us=60 p90_us=80 p99_us=400 p999_us=1500 max_us=2100 over=0",
  "BLACKOUT-HIST name=window from_ms=20000.000 to_ms=50000.000 samples=25000 p50_us=60 p90_us=90 p99_us=500 p999_us=2000 max_us=1200000 over=2",
  `BLACKOUT-END req=${req} seq=${seq} count=${count}`,
].join("\r\n");

describe("parseBlackout", () => {
  const gaps = [
    "BLACKOUT-GAP i=0 at_boot_ms=30000.500 at_real_ms=1796174284553.637 boot_ms=1034.210 mono_ms=40.120",
    "[   31.2] PM: some kernel line in the middle",
    "BLACKOUT-GAP i=1 at_boot_ms=40000.000 at_real_ms=1796174294553.637 boot_ms=2001.500 mono_ms=2001.400",
  ];

  test("reads the block for a request, with \\r\\n line ends and foreign lines skipped", () => {
    const text = `boot noise\n${block("a1", 1, [])}\n${block("b2", 2, gaps)}\nmore`;
    const r = parseBlackout(text, "b2");
    expect(r).toMatchObject({ req: "b2", seq: 2, clocksource: "xen", sleepUs: 1000, thresholdUs: 3000, floorS: 10, dropped: 0 });
    expect(r?.gaps).toEqual([
      { atBootMs: 30000.5, atRealMs: 1796174284553.637, bootMs: 1034.21, monoMs: 40.12 },
      { atBootMs: 40000, atRealMs: 1796174294553.637, bootMs: 2001.5, monoMs: 2001.4 },
    ]);
    expect(r?.floor).toEqual({ fromMs: 1000, toMs: 11000, samples: 9000, p50Us: 60, p90Us: 80, p99Us: 400, p999Us: 1500, maxUs: 2100, over: 0 });
    expect(r?.window.maxUs).toBe(1200000);
    expect(parseBlackout(text, "a1")?.gaps).toEqual([]);
    expect(parseBlackout(text)?.req).toBe("b2"); // the last one
  });

  test("an unfinished block is not there yet; a block missing gap lines is an error", () => {
    const full = block("c3", 3, gaps);
    expect(parseBlackout(full.slice(0, full.indexOf("BLACKOUT-END")), "c3")).toBeUndefined();
    expect(parseBlackout(full, "other")).toBeUndefined();
    expect(() => parseBlackout(block("d4", 4, gaps, 3), "d4")).toThrow(/2 gap lines for count=3/);
  });
});

describe("the probe on this host", () => {
  const dir = mkdtempSync(join(tmpdir(), "blackout-"));
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  test("compiles static, runs 3 s and prints a block the parser reads", () => {
    const bin = join(dir, "blackout");
    const cc = spawnSync("gcc", ["-static", "-Os", "-s", "-Wall", "-Werror", "-o", bin, join(assetsDir, "guest-blackout.c")], { encoding: "utf8" });
    expect(cc.stderr).toBe("");
    expect(cc.status).toBe(0);
    const run = spawnSync(bin, ["--run", "3", "--floor-s", "1"], { encoding: "utf8", timeout: 20_000 });
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^BLACKOUT-START pid=\d+ clocksource=\S+ sleep_us=1000 threshold_us=3000 floor_s=1 xenbus=(no|yes)\n/);
    const r = parseBlackout(run.stdout, "signal");
    expect(r).toBeDefined();
    if (!r) return;
    // ~1000 intervals a second when the host is idle; far fewer on a loaded one, never none.
    expect(r.window.samples).toBeGreaterThan(100);
    expect(r.floor.samples).toBeGreaterThan(30);
    expect(r.floor.toMs - r.floor.fromMs).toBeLessThanOrEqual(1000);
    expect(r.window.over).toBe(r.gaps.length + r.dropped);
    for (const g of r.gaps) expect(g.bootMs).toBeGreaterThan(4);
  });

  test("refuses an unknown option", () => {
    const bin = join(dir, "blackout");
    const run = spawnSync(bin, ["--nope"], { encoding: "utf8" });
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/usage: blackout/);
  });
});

// The checkpoint progress reporter on its own: what a line says, the rate over the last period.
import { progressLine, startProgress, type LoopCounts } from "../src/progress";

describe("progressLine", () => {
  it("says done of total, ok, failed and the rate; skipped only when there were some", () => {
    expect(progressLine("checkpoint on domain 5", { done: 120, ok: 119, failed: 1 }, 1000, 24.04)).toBe(
      "fastsuspend: checkpoint on domain 5: 120/1000 done, 119 ok, 1 failed, 24.0/s\n",
    );
    expect(progressLine("x", { done: 3, ok: 3, failed: 0, skipped: 0 }, undefined, 0)).toBe("fastsuspend: x: 3 done, 3 ok, 0 failed, 0.0/s\n");
    expect(progressLine("x", { done: 3, ok: 3, failed: 0, skipped: 2 }, 10, 1)).toBe("fastsuspend: x: 3/10 done, 3 ok, 0 failed, 2 skipped, 1.0/s\n");
  });
});

describe("startProgress", () => {
  beforeEach(() => { jest.useFakeTimers(); });
  afterEach(() => { jest.useRealTimers(); });

  it("writes a line every period, its rate over that period only, until stopped", () => {
    const counts: LoopCounts = { done: 0, ok: 0, failed: 0 };
    let t = 0;
    const lines: string[] = [];
    const stop = startProgress({ label: "loop", total: 1000, read: () => counts, write: (l) => lines.push(l), everyMs: 5000, now: () => t });
    counts.done = counts.ok = 100; // 20/s over the first 5 s
    t = 5000;
    jest.advanceTimersByTime(5000);
    counts.done = 125; // then 5/s: the slowdown shows, an average since the start (12.5/s) would hide it
    counts.ok = 124;
    counts.failed = 1;
    t = 10000;
    jest.advanceTimersByTime(5000);
    expect(lines).toEqual(["fastsuspend: loop: 100/1000 done, 100 ok, 0 failed, 20.0/s\n", "fastsuspend: loop: 125/1000 done, 124 ok, 1 failed, 5.0/s\n"]);
    stop();
    jest.advanceTimersByTime(20000);
    expect(lines).toHaveLength(2);
  });

  it("does not keep the process alive on its own (unref'd timer)", () => {
    jest.useRealTimers();
    const before = process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
    const stop = startProgress({ label: "loop", read: () => ({ done: 0, ok: 0, failed: 0 }), write: () => undefined, everyMs: 5000 });
    // An unref'd timer is not an active resource.
    expect(process.getActiveResourcesInfo().filter((r) => r === "Timeout").length).toBe(before);
    stop();
  });
});

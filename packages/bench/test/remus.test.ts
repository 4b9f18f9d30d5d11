// xl remus rows: libxl's lines paired per checkpoint, the guest's gaps in the run, the rate.
import type { BlackoutGap } from "@fastsuspend/lab";

import { requestToSuspended, summarizeRemus, type RemusRun } from "../src/remus";

const gap = (atRealMs: number, bootMs: number): BlackoutGap => ({ atBootMs: 0, atRealMs, bootMs, monoMs: bootMs });
const run = (over: Partial<RemusRun> = {}): RemusRun => ({
  startRealMs: 10_000, endRealMs: 20_000, ms: 10_000, code: 124,
  requests: [100, 200, 300, 400], suspended: [110, 215, 330], tail: "", ...over,
});

describe("xl remus rows", () => {
  it("pairs each request with the first suspended line before the next request; a checkpoint without one is not paired", () => {
    expect(requestToSuspended(run())).toEqual([10, 15, 30]);
    // The second checkpoint's suspended line never came: the third one's is not mistaken for it.
    expect(requestToSuspended(run({ suspended: [110, 330] }))).toEqual([10, 30]);
    expect(requestToSuspended(run({ requests: [], suspended: [] }))).toEqual([]);
  });

  it("summarizes: checkpoints issued and suspended, per-checkpoint blackout from the gaps inside the run only, rate, period", () => {
    const r = summarizeRemus("xl remus -b -i 100", "patched 6.1", "patched 4.17.5", "pvh", run(), [gap(9_000, 500), gap(10_100, 12), gap(10_200, 14), gap(10_300, 40), gap(25_000, 900)]);
    expect(r).toMatchObject({ tool: "xl remus -b -i 100", guestType: "pvh", n: 4, ok: 3, failed: 1, errors: [] });
    expect(r.blackoutMs).toMatchObject({ n: 3, median: 14, max: 40 });
    expect(r.totalMs).toMatchObject({ n: 3, median: 100 });
    expect(r.phases.suspendMs.median).toBe(15);
    // Suspended -> next request: 200-110, 300-215, 400-330.
    expect(r.phases.saveAndResumeMs).toMatchObject({ n: 3, min: 70, max: 90 });
    expect(r.perSecond).toBeCloseTo(10, 5);
  });

  it("says when xl remus ended other than by the timeout's SIGTERM", () => {
    expect(summarizeRemus("t", "k", "h", "pvh", run({ code: 0 }), []).errors).toEqual([]);
    expect(summarizeRemus("t", "k", "h", "pvh", run({ code: 3, tail: "Failed to enable logdirty: 95" }), []).errors).toEqual(["xl remus exited 3: Failed to enable logdirty: 95"]);
    expect(summarizeRemus("t", "k", "h", "pvh", run({ requests: [], suspended: [] }), []).perSecond).toBe(0);
  });
});

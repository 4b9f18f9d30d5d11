// xl remus rows: libxl's lines paired per checkpoint, the guest's gaps in the run, the rate.
import type { BlackoutGap } from "@fastsuspend/lab";

import { blackoutPerCheckpoint, remusRunEdges, requestToSuspended, summarizeRemus, summarizeRemusRounds } from "../src/remus";
import type { XlRun } from "../src/xl-timed";

const gap = (atRealMs: number, bootMs: number): BlackoutGap => ({ atBootMs: 0, atRealMs, bootMs, monoMs: bootMs });
// Stopped by the script after 10 s, and ended by that SIGTERM: the normal end of a blackhole run.
const run = (over: Partial<XlRun> = {}): XlRun => ({
  startRealMs: 10_000, endRealMs: 20_000, ms: 10_000, code: null, signal: "SIGTERM", stoppedAtMs: 9_990,
  requests: [100, 200, 300, 400], suspended: [110, 215, 330], memoryDone: [], tail: "", ...over,
});

describe("xl remus rows", () => {
  it("pairs each request with the first suspended line before the next request; a checkpoint without one is not paired", () => {
    expect(requestToSuspended(run())).toEqual([10, 15, 30]);
    // The second checkpoint's suspended line never came: the third one's is not mistaken for it.
    expect(requestToSuspended(run({ suspended: [110, 330] }))).toEqual([10, 30]);
    expect(requestToSuspended(run({ requests: [], suspended: [] }))).toEqual([]);
  });

  it("gives each checkpoint the longest gap of its period (request to next request, 20 ms earlier), not the probe's noise beside it", () => {
    // Periods: [10080, 10180), [10180, 10280), [10280, 10380), [10380, 20020).
    const gaps = [gap(9_000, 500), gap(10_100, 12), gap(10_150, 3), gap(10_185, 14), gap(10_290, 2), gap(10_300, 40), gap(25_000, 900)];
    expect(blackoutPerCheckpoint(run(), gaps)).toEqual([12, 14, 40]);
    // Noise alone was what the rows of session 9 took for blackouts: gaps that no checkpoint caused.
    expect(blackoutPerCheckpoint(run(), [gap(10_150, 3), gap(10_250, 2), gap(10_350, 4)])).toEqual([3, 2, 4]);
    expect(blackoutPerCheckpoint(run({ requests: [] }), gaps)).toEqual([]);
  });

  it("leaves out the last checkpoint of a run that left the guest suspended (its gap lasts until the guest is resumed by hand), not of one that did not", () => {
    const gaps = [gap(10_100, 12), gap(10_185, 14), gap(10_300, 40), gap(10_500, 2300)];
    expect(blackoutPerCheckpoint(run(), gaps, { leftSuspended: true })).toEqual([12, 14, 40]);
    expect(blackoutPerCheckpoint(run(), gaps)).toEqual([12, 14, 40, 2300]);
  });

  it("leaves out a checkpoint whose gap was still open when the script stopped xl: the stop ended it, not remus", () => {
    // Stopped at 19_990 (dom0's clock): the last gap began at 19_900 and lasted 3.1 s.
    const gaps = [gap(10_100, 12), gap(10_185, 14), gap(10_300, 40), gap(19_900, 3100)];
    expect(blackoutPerCheckpoint(run(), gaps)).toEqual([12, 14, 40]);
    expect(remusRunEdges({ run: run(), gaps, leftSuspended: false })).toBe("4 checkpoints; first 12.0 ms; longest 40.0 ms (#3); left out, ended by the stop: 3100.0 ms");
    // One that closed before the stop is the checkpoint's.
    expect(blackoutPerCheckpoint(run(), [...gaps.slice(0, 3), gap(19_900, 60)])).toEqual([12, 14, 40, 60]);
    expect(remusRunEdges({ run: run({ requests: [] }), gaps: [], leftSuspended: false })).toBe("0 checkpoints; first none; longest none");
  });

  it("summarizes: checkpoints issued and suspended, per-checkpoint blackout from the gaps inside the run only, rate, period", () => {
    const r = summarizeRemus("xl remus -b -i 100", "patched 6.1", "patched 4.17.5", "pvh", run(), [gap(9_000, 500), gap(10_100, 12), gap(10_200, 14), gap(10_230, 3), gap(10_300, 40), gap(25_000, 900)]);
    expect(r).toMatchObject({ tool: "xl remus -b -i 100", guestType: "pvh", n: 4, ok: 3, failed: 1, errors: [] });
    expect(r.blackoutMs).toMatchObject({ n: 3, median: 14, max: 40 });
    expect(r.totalMs).toMatchObject({ n: 3, median: 100 });
    expect(r.phases.suspendMs.median).toBe(15);
    // Suspended -> next request: 200-110, 300-215, 400-330.
    expect(r.phases.saveAndResumeMs).toMatchObject({ n: 3, min: 70, max: 90 });
    expect(r.perSecond).toBeCloseTo(10, 5);
  });

  it("splits suspended -> next request where the checkpoint's dirty pages were sent; a mark of another checkpoint is not taken", () => {
    // Checkpoint 1: memory at 118; checkpoint 2: none before its next request (the 305 belongs to the third,
    // but comes before its suspended line at 330, so it is no one's); checkpoint 3: memory at 340.
    const r = summarizeRemus("t", "k", "h", "pvh", run({ memoryDone: [118, 305, 340, 410] }), []);
    expect(r.phases.memoryMs).toMatchObject({ n: 2, min: 8, max: 10 });
    expect(r.phases.afterMemoryMs).toMatchObject({ n: 2, min: 60, max: 82 });
    expect(summarizeRemus("t", "k", "h", "pvh", run(), []).phases.memoryMs).toMatchObject({ n: 0 });
  });

  it("merges a guest's runs taken in turns: samples pooled, the rate over the time each run checkpointed, not the pauses between runs", () => {
    // Two runs 10 s apart: 4 requests 100 ms apart in each (3 intervals of 100 ms each).
    const a = { run: run(), gaps: [gap(10_100, 12), gap(10_185, 14), gap(10_300, 40)], leftSuspended: false };
    const b = { run: run({ startRealMs: 30_000, endRealMs: 40_000 }), gaps: [gap(30_100, 20), gap(30_300, 60)], leftSuspended: true };
    const r = summarizeRemusRounds("xl remus -b -i 100", "k", "h", "pvh", [a, b]);
    expect(r).toMatchObject({ n: 8, ok: 6, failed: 2, errors: [] });
    expect(r.perSecond).toBeCloseTo(10, 5);
    expect(r.totalMs).toMatchObject({ n: 6, median: 100 });
    // The second run left the guest suspended: its last checkpoint has no blackout.
    expect(r.blackoutMs.n).toBe(3 + 2);
    expect(r.blackoutMs.max).toBe(60);
    expect(summarizeRemusRounds("t", "k", "h", "pvh", []).perSecond).toBe(0);
  });

  it("says when xl remus ended other than by the script's SIGTERM", () => {
    expect(summarizeRemus("t", "k", "h", "pvh", run({ code: 0, signal: null }), []).errors).toEqual([]);
    expect(summarizeRemus("t", "k", "h", "pvh", run({ code: 3, signal: null, stoppedAtMs: undefined, tail: "Failed to enable logdirty: 95" }), []).errors).toEqual(["xl exited 3: Failed to enable logdirty: 95"]);
    // Killed by another signal, or by SIGTERM the script did not send.
    expect(summarizeRemus("t", "k", "h", "pvh", run({ signal: "SIGKILL", tail: "a\nb" }), []).errors).toEqual(["xl killed by SIGKILL: a | b"]);
    expect(summarizeRemus("t", "k", "h", "pvh", run({ stoppedAtMs: undefined }), []).errors).toHaveLength(1);
    expect(summarizeRemus("t", "k", "h", "pvh", run({ requests: [], suspended: [] }), []).perSecond).toBe(0);
  });
});

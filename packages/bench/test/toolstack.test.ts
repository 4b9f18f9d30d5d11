import { droppedGaps, gapsPerRun, noRepeatedSamples, pausedState, repeatedRow, runningState, summarizeXlRuns, type RunGaps } from "../src/toolstack";
import { parseXlRuns, type XlRun } from "../src/xl-timed";

const run = (start: number, ms: number, code = 0, requests = [300], suspended = [320], memoryDone: number[] = []): XlRun => ({ startRealMs: start, endRealMs: start + ms, ms, code, signal: null, requests, suspended, memoryDone });
const gap = (atRealMs: number, bootMs: number) => ({ atBootMs: 0, atRealMs, bootMs, monoMs: bootMs });

describe("the toolstack table's pieces", () => {
  test("a repeated row says what was lost beside its runs: a turn that failed before its runs, a probe that did not answer", () => {
    // Session 18: two xl migrate turns were lost and their rows read 13/13 and 14/14 ok, errors [].
    const s = noRepeatedSamples();
    s.runs.push(run(1000, 1200));
    s.seen.push({ blackout: 900, stalls: 0 });
    s.errors.push("round 2's turn (7) lost: the guest's probe did not answer");
    const lines: string[] = [];
    const row = repeatedRow({ path: "k", desc: "stock 6.12", name: "g" }, "xl migrate", s, { runs: 20, hypervisor: "h", log: (l) => lines.push(l), guestType: "pvh" });
    expect(row).toMatchObject({ n: 1, ok: 1, errors: ["round 2's turn (7) lost: the guest's probe did not answer"] });
    expect(lines).toHaveLength(1);
  });

  test("parseXlRuns keeps the dom0 script's JSON lines only", () => {
    const out = `noise\n${JSON.stringify(run(1000, 1200))}\nmore noise\n${JSON.stringify(run(3000, 1100, 1))}\n`;
    expect(parseXlRuns(out).map((r) => r.code)).toEqual([0, 1]);
  });

  test("a run's blackout is the gap over libxl's suspended mark; its other gaps are stalls, not downtime (session 15's migrate rows summed them)", () => {
    // xl migrate: request 9000 ms after start, suspended 100 ms later (at real time 19_100).
    const migrate = run(10_000, 12_000, 0, [9000], [9100]);
    const precopy = [gap(11_000, 500), gap(15_000, 800)];
    const down = gap(18_900, 1500);
    expect(gapsPerRun([migrate], [...precopy, down, gap(21_000, 10)])).toEqual([{ blackout: 1500, stalls: 1310 }]);
    // Gaps of another run are neither.
    expect(gapsPerRun([migrate], [gap(5_000, 3000), down, gap(30_000, 40)])).toEqual([{ blackout: 1500, stalls: 0 }]);
  });

  test("the suspension gap may miss the mark by the slack, not more; a run without the mark has no blackout", () => {
    const r = run(10_000, 1000, 0, [300], [320]); // suspended at 10_320
    expect(gapsPerRun([r], [gap(10_200, 70)], 100)).toEqual([{ blackout: 70, stalls: 0 }]); // ends 50 ms before
    expect(gapsPerRun([r], [gap(10_100, 70)], 100)).toEqual([{ stalls: 70 }]); // ends 150 ms before
    expect(gapsPerRun([r], [gap(10_400, 70)], 100)).toEqual([{ blackout: 70, stalls: 0 }]); // begins 80 ms after
    expect(gapsPerRun([run(10_000, 1000, 3, [], [])], [gap(10_300, 70)])).toEqual([{ stalls: 70 }]);
    // Of two gaps over the mark, the longer is the blackout.
    expect(gapsPerRun([r], [gap(10_250, 40), gap(10_300, 900)], 100)).toEqual([{ blackout: 900, stalls: 40 }]);
  });

  test("summarizeXlRuns: phases from libxl's marks, failures apart", () => {
    const runs = [run(0, 1000, 0, [400], [430]), run(5000, 1200, 0, [500], [520]), run(9000, 50, 3, [], [])];
    const t = summarizeXlRuns("xl save -c", "patched 6.1", "patched 4.17.5", runs, [{ blackout: 20, stalls: 5 }, { blackout: 30, stalls: 0 }, { stalls: 0 }]);
    expect(t).toMatchObject({ n: 3, ok: 2, failed: 1 });
    expect(t.totalMs).toMatchObject({ n: 2, min: 1000, max: 1200 });
    expect(t.blackoutMs).toMatchObject({ n: 2, min: 20, max: 30 });
    expect(t.stallsMs).toMatchObject({ n: 2, min: 0, max: 5 });
    expect(t.phases.setupMs).toMatchObject({ min: 400, max: 500 });
    expect(t.phases.suspendMs).toMatchObject({ min: 20, max: 30 });
    expect(t.phases.saveAndResumeMs).toMatchObject({ min: 570, max: 680 });
    expect(t.errors).toEqual(["xl exited 3: "]);
  });

  test("summarizeXlRuns: the memory sent after the suspended mark splits suspended -> exit; a live migration's earlier rounds do not", () => {
    // A migration: two pre-copy rounds at 100% before the request, the last round 300 ms after suspended.
    const runs = [run(0, 2000, 0, [1000], [1010], [400, 800, 1310]), run(5000, 2000, 0, [1000], [1020], [1420]), run(9000, 2000, 0, [1000], [1010], [])];
    const t = summarizeXlRuns("xl migrate", "patched 6.12", "Debian 4.20.4", runs, []);
    expect(t.phases.memoryMs).toMatchObject({ n: 2, min: 300, max: 400 });
    expect(t.phases.afterMemoryMs).toMatchObject({ n: 2, min: 580, max: 690 });
    expect(t.phases.saveAndResumeMs).toMatchObject({ n: 3 });
  });

  test("summarizeXlRuns: a run whose probe did not answer has no blackout, and the others keep theirs (review 11: they shifted)", () => {
    const runs = [run(0, 1000), run(5000, 1000), run(9000, 1000)];
    const seen: (RunGaps | undefined)[] = [];
    seen[0] = { blackout: 100, stalls: 0 };
    seen[2] = { blackout: 300, stalls: 7 };
    const t = summarizeXlRuns("xl migrate", "patched 6.1", "patched 4.17.5", runs, seen);
    expect(t.blackoutMs).toMatchObject({ n: 2, min: 100, max: 300 });
    expect(t.stallsMs).toMatchObject({ n: 2, min: 0, max: 7 });
  });

  test("a paused guest (waiting its PVH turn) is neither running nor lost; suspended, crashed or dying ones are lost", () => {
    expect(pausedState("--p---")).toBe(true);
    expect(pausedState("-bp---")).toBe(true);
    expect(runningState("--p---")).toBe(false);
    for (const s of ["-b----", "r-----", "---ss-", "--ps--", "----c-", "--p--d", ""]) expect(pausedState(s)).toBe(false);
  });

  test("a row says when the guest's probe dropped gaps (a full table: the figures are incomplete)", () => {
    expect(droppedGaps(0)).toEqual([]);
    expect(droppedGaps(12)).toEqual(["the guest's probe dropped 12 gaps (its table was full): blackout figures incomplete"]);
  });
});

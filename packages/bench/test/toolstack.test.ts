import { blackoutPerRun, droppedGaps, summarizeXlRuns } from "../src/toolstack";
import { parseXlRuns, type XlRun } from "../src/xl-timed";

const run = (start: number, ms: number, code = 0, requests = [300], suspended = [320]): XlRun => ({ startRealMs: start, endRealMs: start + ms, ms, code, signal: null, requests, suspended });
const gap = (atRealMs: number, bootMs: number) => ({ atBootMs: 0, atRealMs, bootMs, monoMs: bootMs });

describe("the toolstack table's pieces", () => {
  test("parseXlRuns keeps the dom0 script's JSON lines only", () => {
    const out = `noise\n${JSON.stringify(run(1000, 1200))}\nmore noise\n${JSON.stringify(run(3000, 1100, 1))}\n`;
    expect(parseXlRuns(out).map((r) => r.code)).toEqual([0, 1]);
  });

  test("a gap counts for the run it fell in (with slack), and gaps within one run add up", () => {
    const runs = [run(10_000, 1000), run(20_000, 1000)];
    expect(blackoutPerRun(runs, [gap(10_500, 30), gap(10_600, 5), gap(15_000, 99), gap(21_050, 40)])).toEqual([35, 40]);
    expect(blackoutPerRun(runs, [gap(9_950, 12)], 100)).toEqual([12, 0]);
    expect(blackoutPerRun(runs, [gap(9_850, 12)], 100)).toEqual([0, 0]);
  });

  test("summarizeXlRuns: phases from libxl's marks, failures apart", () => {
    const runs = [run(0, 1000, 0, [400], [430]), run(5000, 1200, 0, [500], [520]), run(9000, 50, 3, [], [])];
    const t = summarizeXlRuns("xl save -c", "patched 6.1", "patched 4.17.5", runs, [20, 30, 0]);
    expect(t).toMatchObject({ n: 3, ok: 2, failed: 1 });
    expect(t.totalMs).toMatchObject({ n: 2, min: 1000, max: 1200 });
    expect(t.blackoutMs).toMatchObject({ n: 2, min: 20, max: 30 });
    expect(t.phases.setupMs).toMatchObject({ min: 400, max: 500 });
    expect(t.phases.suspendMs).toMatchObject({ min: 20, max: 30 });
    expect(t.phases.saveAndResumeMs).toMatchObject({ min: 570, max: 680 });
    expect(t.errors).toEqual(["xl exited 3: "]);
  });

  test("summarizeXlRuns: a run whose probe did not answer has no blackout, and the others keep theirs (review 11: they shifted)", () => {
    const runs = [run(0, 1000), run(5000, 1000), run(9000, 1000)];
    const blackouts: (number | undefined)[] = [];
    blackouts[0] = 100;
    blackouts[2] = 300;
    const t = summarizeXlRuns("xl migrate", "patched 6.1", "patched 4.17.5", runs, blackouts);
    expect(t.blackoutMs).toMatchObject({ n: 2, min: 100, max: 300 });
  });

  test("a row says when the guest's probe dropped gaps (a full table: the figures are incomplete)", () => {
    expect(droppedGaps(0)).toEqual([]);
    expect(droppedGaps(12)).toEqual(["the guest's probe dropped 12 gaps (its table was full): blackout figures incomplete"]);
  });
});

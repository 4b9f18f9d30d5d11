import { summarizeGuestPhases } from "../src/guest-phases";

const suspend = (suspendMs: number, steps: Record<string, number>, requestMs?: number) => ({
  source: 1, cancelled: true, restored: false, frozen: true, devicePasses: true, clockSteppedBack: false, suspendMs, resumeMs: suspendMs * 2, totalMs: suspendMs * 3 + 2, steps,
  ...(requestMs === undefined ? {} : { requestMs }),
});

describe("summarizeGuestPhases", () => {
  test("nothing traced: no guestMs at all (not a row of NaN)", () => {
    expect(summarizeGuestPhases([])).toBeUndefined();
  });

  test("summarises suspend, resume and each step over the suspends that took it", () => {
    const g = summarizeGuestPhases([suspend(10, { freeze_processes: 4, xs_resume: 8 }, 1), suspend(12, { freeze_processes: 6 }), suspend(14, { freeze_processes: 5 }, 3)]);
    expect(g?.n).toBe(3);
    expect(g?.suspend.median).toBe(12);
    expect(g?.resume.max).toBe(28);
    expect(g?.request).toMatchObject({ n: 2, min: 1, max: 3 });
    expect(g?.steps.freeze_processes).toMatchObject({ n: 3, median: 5 });
    expect(g?.steps.xs_resume).toMatchObject({ n: 1, median: 8 });
  });

  test("a suspend whose clock stepped back is counted, not summarised", () => {
    const g = summarizeGuestPhases([suspend(10, {}), { ...suspend(-5, { dpm_suspend: -11 }), clockSteppedBack: true }]);
    expect(g).toMatchObject({ n: 1, clockSteppedBack: 1 });
    expect(g?.suspend.min).toBe(10);
  });

  test("no request traced anywhere (a stock trigger on an older kernel): no request summary", () => {
    expect(summarizeGuestPhases([suspend(10, {})])).not.toHaveProperty("request");
  });
});

// `fastsuspend status` for people: fastsuspendd's answers (their shape as the daemon sends them) as text.
import { formatDuration, formatStatus, loopText } from "../src/status-format";

const summary = (n: number, median: number, p99: number): Record<string, number> => ({ n, avg: median, min: median, max: p99, median, p99 });
const loop = {
  running: true, intervalMs: 0, count: 1000, path: "evtchn+evtchn", startedAt: "2024-05-01T10:00:00.000Z",
  done: 120, ok: 119, failed: 1, skipped: 3, lastError: null, lastSkip: null, stoppedBy: null,
  cycleMs: summary(100, 12.3, 20.1), suspendMs: summary(100, 5, 9),
};

describe("formatStatus, all domains", () => {
  const answer = {
    daemon: { pid: 4242, uptimeS: 3725, clients: 1, stopping: false, journal: [{ domid: 7, reason: "suspend", since: "2024-05-01T09:00:00.000Z", pid: 4242 }] },
    domains: [
      { domid: 5, state: "running", session: { state: "open", path: "evtchn+evtchn" }, loop, last: null },
      { domid: 7, state: "suspended", session: null, loop: null, last: null },
    ],
  };

  it("prints the daemon, a row per domain under a header, and the journal", () => {
    const lines = formatStatus(answer).split("\n");
    expect(lines[0]).toBe("fastsuspendd: pid 4242, up 1h 02m 05s, 1 client connected");
    expect(lines[1]).toMatch(/^DOMID {2}STATE {6}SESSION {17}CHECKPOINT LOOP$/);
    expect(lines[2]).toBe("5      running    open via evtchn+evtchn  running, 120/1000 done, 119 ok, 1 failed, 3 skipped; cycle median 12.30 ms, p99 20.10 ms (last 100)");
    expect(lines[3]).toMatch(/^7 {6}suspended {2}- {23}-$/);
    expect(lines[4]).toBe("journal (guests it may leave suspended): domain 7 (suspend in flight since 2024-05-01T09:00:00.000Z)");
    expect(lines).toHaveLength(5);
  });

  it("says when there are no guests, and when the daemon is stopping", () => {
    expect(formatStatus({ daemon: { pid: 1, uptimeS: 5, clients: 2, stopping: true, journal: [] }, domains: [] })).toBe(
      "fastsuspendd: pid 1, up 5s, 2 clients connected, stopping\nno guest domains",
    );
  });
});

describe("formatStatus, one domain", () => {
  const caps = {
    domid: 5, exists: true, isDom0: false, dying: false, hvm: false, paused: false, shutdown: null, featureSuspend: true, pvControl: true, pvControlDetail: "PV guest",
    guestChannel: { status: "ok", port: 9 }, hvNotify: { available: false, detail: "not patched" }, paths: ["evtchn+evtchn", "xenstore+watch"],
  };

  it("prints info's lines, then the session, the loop, the last operation and the latencies", () => {
    const text = formatStatus({
      domid: 5, state: "running", capabilities: caps, chosen: "evtchn+evtchn", pathsInUse: ["evtchn+evtchn"],
      session: { state: "open", path: "evtchn+evtchn", lockHeldNow: false },
      last: { op: "cycle", at: "2024-05-01T10:00:01.000Z", path: "evtchn+evtchn", timings: { suspendMs: 5.123, totalMs: 12.3, note: "x" } },
      rolling: { suspendMs: summary(100, 5, 9), cycleMs: summary(100, 12.3, 20.1) }, loop: { ...loop, running: false, stoppedBy: "count" }, queued: 0, journalled: false,
    });
    expect(text.split("\n")).toEqual([
      "domain 5: PV, running",
      "guest suspend channel: ok (port 9)",
      "control/feature-suspend: yes",
      "hypervisor suspend_notify: no (not patched)",
      "paths (fastest first): evtchn+evtchn, xenstore+watch",
      "would use: evtchn+evtchn",
      "state (fastsuspendd): running",
      "session: open via evtchn+evtchn, suspend lock held now: no",
      "checkpoint loop: stopped (count), 120/1000 done, 119 ok, 1 failed, 3 skipped; cycle median 12.30 ms, p99 20.10 ms (last 100)",
      "last: cycle at 2024-05-01T10:00:01.000Z via evtchn+evtchn (suspendMs 5.12, totalMs 12.30)",
      "suspend latency: median 5.00 ms, p99 9.00 ms (last 100)",
      "cycle latency: median 12.30 ms, p99 20.10 ms (last 100)",
      "queued requests: 0",
      "in the daemon's journal: no",
    ]);
  });

  it("leaves out what a domain without history lacks", () => {
    const text = formatStatus({ domid: 6, state: "paused", session: null, last: null, rolling: { suspendMs: summary(0, 0, 0), cycleMs: summary(0, 0, 0) }, loop: null });
    expect(text).toBe("domain 6: paused\nstate (fastsuspendd): paused\nsession: -\ncheckpoint loop: -");
  });
});

describe("formatStatus on answers it does not know", () => {
  it("prints them as JSON rather than guessing", () => {
    expect(formatStatus({ something: "else" })).toBe('{\n  "something": "else"\n}');
    expect(formatStatus(null)).toBe("null");
  });

  it("a loop with fields missing still reads", () => {
    expect(loopText({ running: true })).toBe("running, 0 done, 0 ok, 0 failed");
    expect(loopText(null)).toBe("-");
  });
});

describe("formatDuration", () => {
  it.each([[0, "0s"], [59, "59s"], [61, "1m 01s"], [3725, "1h 02m 05s"], [90061, "1d 1h 01m"]])("%d s is %s", (s, text) => {
    expect(formatDuration(s)).toBe(text);
  });
});

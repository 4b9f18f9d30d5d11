// The Prometheus text: the renderer, the strict parser the tests read it with, the event-loop lag,
// failure and fallback reasons. The daemon's own exposition and the HTTP listener: metrics-http.test.ts.
import { Counter, EventLoopLag, failureReason, fallbackReason, Gauge, Histogram, Registry, DaemonError } from "../src";
import { parsePrometheusText, type PromFamily } from "../src/testing";
import { COORDINATOR_ERROR_CODES, CoordinatorError, SuspendTimeoutError, type Capabilities } from "@fastsuspend/coordinator";
import { xenError } from "@fastsuspend/xen";

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function family(fams: Map<string, PromFamily>, name: string): PromFamily {
  const f = fams.get(name);
  if (f === undefined) throw new Error(`no family ${name} in ${[...fams.keys()].join(", ")}`);
  return f;
}

describe("the renderer", () => {
  it("writes histograms (cumulative buckets, le last, +Inf, sum, count), counters and gauges that parse back", () => {
    const r = new Registry();
    const h = r.add(new Histogram("x_seconds", "X.", ["path"], [0.01, 0.1]));
    h.observe({ path: "xenstore+watch" }, 0.005);
    h.observe({ path: "xenstore+watch" }, 0.05);
    h.observe({ path: "xenstore+watch" }, 3);
    h.observe({ path: "evtchn+evtchn" }, 0.001);
    const c = r.add(new Counter("y_total", "Y.", ["op", "code"]));
    c.inc({ op: "status", code: "EINVAL" });
    c.inc({ op: "status", code: "EINVAL" }, 2);
    r.add(new Gauge("z", "Z.", ["domain", "domid"], () => [{ labels: { domain: "web", domid: 3 }, value: 1.5 }]));
    const text = r.render();
    expect(text).toBe(
      [
        "# HELP x_seconds X.",
        "# TYPE x_seconds histogram",
        'x_seconds_bucket{path="xenstore+watch",le="0.01"} 1',
        'x_seconds_bucket{path="xenstore+watch",le="0.1"} 2',
        'x_seconds_bucket{path="xenstore+watch",le="+Inf"} 3',
        'x_seconds_sum{path="xenstore+watch"} 3.055',
        'x_seconds_count{path="xenstore+watch"} 3',
        'x_seconds_bucket{path="evtchn+evtchn",le="0.01"} 1',
        'x_seconds_bucket{path="evtchn+evtchn",le="0.1"} 1',
        'x_seconds_bucket{path="evtchn+evtchn",le="+Inf"} 1',
        'x_seconds_sum{path="evtchn+evtchn"} 0.001',
        'x_seconds_count{path="evtchn+evtchn"} 1',
        "# HELP y_total Y.",
        "# TYPE y_total counter",
        'y_total{op="status",code="EINVAL"} 3',
        "# HELP z Z.",
        "# TYPE z gauge",
        'z{domain="web",domid="3"} 1.5',
        "",
      ].join("\n"),
    );
    const fams = parsePrometheusText(text);
    expect([...fams.keys()]).toEqual(["x_seconds", "y_total", "z"]);
    expect(family(fams, "x_seconds")).toMatchObject({ type: "histogram", help: "X." });
    expect(family(fams, "x_seconds").samples.filter((s) => s.labels.path === "evtchn+evtchn")).toHaveLength(5);
    expect(family(fams, "y_total").samples).toEqual([{ name: "y_total", labels: { op: "status", code: "EINVAL" }, value: 3 }]);
    expect(family(fams, "z").samples).toEqual([{ name: "z", labels: { domain: "web", domid: "3" }, value: 1.5 }]);
  });

  it("escapes backslash, double quote and newline in label values (guest-chosen names), and in HELP", () => {
    const nasty = 'a"b\\c\nd} e="f"';
    const r = new Registry();
    r.add(new Counter("n_total", "Help with a \\ and a\nnewline.", ["domain"])).inc({ domain: nasty });
    const text = r.render();
    expect(text).toContain('n_total{domain="a\\"b\\\\c\\nd} e=\\"f\\""} 1\n');
    expect(text).toContain("# HELP n_total Help with a \\\\ and a\\nnewline.\n");
    // One sample line: the newline in the name did not start a new line.
    expect(text.split("\n").filter((l) => l.startsWith("n_total"))).toHaveLength(1);
    const f = family(parsePrometheusText(text), "n_total");
    expect(f.help).toBe("Help with a \\ and a\nnewline.");
    expect(f.samples[0]?.labels).toEqual({ domain: nasty });
  });

  it("has a zero series from the start for metrics without labels; none for labelled ones until used", () => {
    const r = new Registry();
    r.add(new Counter("a_total", "A."));
    r.add(new Counter("b_total", "B.", ["op"]));
    r.add(new Histogram("c_seconds", "C.", [], [1]));
    const fams = parsePrometheusText(r.render());
    expect(family(fams, "a_total").samples).toEqual([{ name: "a_total", labels: {}, value: 0 }]);
    expect(family(fams, "b_total")).toMatchObject({ type: "counter", samples: [] });
    expect(family(fams, "c_seconds").samples.map((s) => [s.name, s.labels.le ?? null, s.value])).toEqual([
      ["c_seconds_bucket", "1", 0],
      ["c_seconds_bucket", "+Inf", 0],
      ["c_seconds_sum", null, 0],
      ["c_seconds_count", null, 0],
    ]);
  });

  it("refuses what would make a scrape fail: undeclared labels, bad names, two metrics of one name, a counter going down", () => {
    const c = new Counter("d_total", "D.", ["op"]);
    expect(() => { c.inc({ op: "x", extra: 1 } as unknown as { op: string }); }).toThrow(/labels \{op,extra\} given, \{op\} declared/);
    expect(() => { c.inc({} as unknown as { op: string }); }).toThrow(/declared/);
    expect(() => { c.inc({ op: "x" }, -1); }).toThrow(/only goes up/);
    expect(() => new Counter("bad-name", "x")).toThrow(/invalid metric name/);
    expect(() => new Counter("ok_total", "x", ["__reserved"])).toThrow(/invalid label name/);
    expect(() => new Histogram("h", "x", ["le"])).toThrow(/"le" is the histogram's own label/);
    const r = new Registry();
    r.add(new Counter("e_total", "E."));
    expect(() => r.add(new Counter("e_total", "E again."))).toThrow(/registered twice/);
    // A gauge whose reader repeats a label set keeps the first: a duplicate fails a whole scrape.
    const g = new Gauge("g", "G.", ["domid"], () => [{ labels: { domid: 1 }, value: 1 }, { labels: { domid: 1 }, value: 2 }]);
    expect(g.render().split("\n").filter((l) => l.startsWith("g{"))).toEqual(['g{domid="1"} 1']);
  });

  it("forgets the series of a domain that is gone", () => {
    const c = new Counter("f_total", "F.", ["domain", "domid", "result"]);
    c.inc({ domain: "a", domid: 3, result: "ok" });
    c.inc({ domain: "a", domid: 3, result: "failed" });
    c.inc({ domain: "b", domid: 4, result: "ok" });
    c.remove({ domid: 3 });
    expect(c.render().split("\n").slice(2)).toEqual(['f_total{domain="b",domid="4",result="ok"} 1']);
  });
});

describe("the strict text-format parser (what the tests read the output with)", () => {
  it("reads the format's own example, timestamps, NaN, ±Inf, a trailing comma and a plain comment", () => {
    const fams = parsePrometheusText(
      [
        "# HELP http_requests_total The total number of HTTP requests.",
        "# TYPE http_requests_total counter",
        'http_requests_total{method="post",code="200"} 1027 1395066363000',
        'http_requests_total{method="post",code="400",}    3 1395066363000',
        "# a comment",
        "msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find file:\\n\\\"FILE.TXT\\\"\"} 1.458255915e9",
        "metric_without_timestamp_and_labels 12.47",
        "something_weird{problem=\"division by zero\"} +Inf -3982045",
        "x NaN",
        "",
      ].join("\n"),
    );
    expect(family(fams, "http_requests_total").samples[1]).toEqual({ name: "http_requests_total", labels: { method: "post", code: "400" }, value: 3, timestampMs: 1395066363000 });
    expect(family(fams, "msdos_file_access_time_seconds").samples[0]?.labels).toEqual({ path: "C:\\DIR\\FILE.TXT", error: 'Cannot find file:\n"FILE.TXT"' });
    expect(family(fams, "something_weird").samples[0]?.value).toBe(Infinity);
    expect(family(fams, "x").samples[0]?.value).toBeNaN();
    expect(family(fams, "x").type).toBe("untyped");
  });

  it.each([
    ["no newline at the end", "a 1", /must end with a newline/],
    ["an unknown escape", 'a{l="x\\ty"} 1\n', /invalid escape/],
    ["an unescaped quote", 'a{l="x"y"} 1\n', /expected "," or "}"/],
    ["an unterminated value", 'a{l="x} 1\n', /unterminated/],
    ["a bad metric name", "a-b 1\n", /invalid metric name/],
    ["a label given twice", 'a{l="1",l="2"} 1\n', /given twice/],
    ["a value that is not a number", "a one\n", /not a number/],
    ["the same series twice", 'a{l="1"} 1\na{l="1"} 2\n', /same series twice/],
    ["a second TYPE", "# TYPE a gauge\n# TYPE a gauge\na 1\n", /second TYPE/],
    ["a TYPE after the samples", "a 1\n# TYPE a gauge\n", /TYPE after its samples/],
    ["an unknown type", "# TYPE a meter\n", /unknown type/],
    ["a family in two groups", "a 1\nb 1\na{l=\"x\"} 2\n", /not one group/],
    ["a negative counter", "# TYPE a_total counter\na_total -1\n", /non-negative/],
    ["buckets that are not cumulative", '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n', /not cumulative/],
    ["no +Inf bucket", '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n', /no le="\+Inf" bucket/],
    ["+Inf not equal to the count", '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 1\n', /!= _count/],
  ])("refuses %s", (_what, text, err) => {
    expect(() => parsePrometheusText(text)).toThrow(err);
  });
});

describe("event-loop lag", () => {
  it("reports a blocked loop as the window's maximum, and reads zeros once stopped without a window", async () => {
    const lag = new EventLoopLag({ resolutionMs: 10, windowMs: 60_000 });
    lag.start();
    try {
      await sleep(60);
      lag.rotate();
      const idle = lag.read();
      await sleep(30);
      const t = Date.now();
      while (Date.now() - t < 120) {
        // Block the loop, as a synchronous /proc scan once did.
      }
      await sleep(40);
      lag.rotate();
      const blocked = lag.read();
      expect(blocked.max).toBeGreaterThanOrEqual(0.08);
      expect(blocked.max).toBeLessThan(5);
      expect(blocked.max).toBeGreaterThan(idle.max);
      expect(blocked.p99).toBeGreaterThan(0);
    } finally {
      lag.stop();
    }
    expect(new EventLoopLag().read()).toEqual({ p99: 0, max: 0 });
  });
});

describe("reasons", () => {
  it("a failed cycle's reason comes from its error's code, never its text", () => {
    expect(failureReason(new SuspendTimeoutError(3, { path: "xenstore+watch", timeoutMs: 10, withdrawn: true, resumedLateSuspend: false, unrevocable: false }))).toBe("timeout");
    expect(failureReason(new CoordinatorError("ELOCKED", 3, "held"))).toBe("locked");
    expect(failureReason(new CoordinatorError("EDOMAIN", 3, "crashed"))).toBe("domain");
    expect(failureReason(new CoordinatorError("ENOPATH", 3, "x"))).toBe("no-path");
    expect(failureReason(new DaemonError("EBUSY", "x"))).toBe("busy");
    expect(failureReason(xenError("xc_domain_getinfo", "dom=3", "ESRCH"))).toBe("domain");
    expect(failureReason(xenError("xc_domctl", "dom=3", "EIO"))).toBe("xen");
    expect(failureReason(new Error("domain \"web\nx\" exploded"))).toBe("internal");
    expect(failureReason("a string")).toBe("internal");
    // The split of the old catch-all ESTATE: each case its own code, each code its reason.
    expect(failureReason(new CoordinatorError("ENODOMAIN", 3, "x"))).toBe("domain");
    expect(failureReason(new CoordinatorError("EDYING", 3, "x"))).toBe("domain");
    expect(failureReason(new CoordinatorError("EINTERRUPTED", 3, "x"))).toBe("interrupted");
    expect(failureReason(new CoordinatorError("ESUSPENDED", 3, "timed out, crashed"))).toBe("state");
    expect(failureReason(new DaemonError("ENOLOOP", "x"))).toBe("state");
    const reasons = new Set(["timeout", "locked", "busy", "domain", "interrupted", "state", "no-path", "closed", "shutdown", "xen", "internal"]);
    for (const code of COORDINATOR_ERROR_CODES) expect([code, reasons.has(failureReason(new CoordinatorError(code, 3, "x")))]).toEqual([code, true]);
  });

  it("a domain fell back when its guest has no usable suspend channel, or when its session failed over", () => {
    const caps = (status: Capabilities["guestChannel"]["status"], paths: string[]): Capabilities => ({
      domid: 3, exists: true, isDom0: false, dying: false, hvm: false, shutdown: null, paused: false,
      guestChannel: { status }, featureSuspend: true, pvControl: true, pvControlDetail: "PV guest", hvNotify: { available: false, detail: "" },
      triggers: [], notifications: [], paths: paths as Capabilities["paths"],
    });
    expect(fallbackReason(caps("ok", ["evtchn+evtchn", "xenstore+evtchn"]), "evtchn+evtchn", undefined)).toBe("none");
    expect(fallbackReason(caps("absent", ["xenstore+evtchn"]), "xenstore+evtchn", undefined)).toBe("channel-absent");
    expect(fallbackReason(caps("garbage", ["xenstore+evtchn"]), "xenstore+evtchn", undefined)).toBe("channel-garbage");
    expect(fallbackReason(caps("ok", ["evtchn+evtchn", "xenstore+evtchn"]), "xenstore+evtchn", undefined)).toBe("failed-over");
    // Asked for: not a fallback.
    expect(fallbackReason(caps("ok", ["evtchn+evtchn", "xenstore+watch"]), "xenstore+watch", "xenstore+watch")).toBe("none");
  });
});

// The benchmark's latency CDF, asserted on the SVG it writes: everything inside the canvas, an x
// axis that starts at the data, y labels apart from each other.
import type { BenchResult } from "@fastsuspend/cli";

import { estimateTextWidth, FONT_SIZE, latencyCdfSvg, spacedLabels, timeRange, timeTicks } from "../src/plot";

type PathResult = BenchResult["paths"][number];

/** Good enough for the legend: the plot reads only median and p99. */
function summary(xs: number[]): PathResult["totalMs"] {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number): number => s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)] ?? NaN;
  return { n: s.length, avg: s.reduce((a, b) => a + b, 0) / s.length, min: s[0] ?? NaN, max: s.at(-1) ?? NaN, median: at(0.5), p99: at(0.99) };
}

/** `n` samples spread from `from` to `to` ms. */
const spread = (n: number, from: number, to: number): number[] => Array.from({ length: n }, (_, i) => from + ((to - from) * i) / (n - 1));

function path(name: string, totalMs: number[]): PathResult {
  const s = summary(totalMs);
  return { name, n: totalMs.length, ok: totalMs.length, failed: 0, suspendMs: s, resumeMs: s, totalMs: s, samples: { suspendMs: totalMs, resumeMs: totalMs, totalMs }, errors: [] };
}

/** The numbers of the README's latest run: every sample above 10 ms. */
const RESULT: BenchResult = {
  xen: "4.17.5", guestKernel: "patched (suspend event channel)", xenstored: "oxenstored", domid: 1, cycles: 100, intervalMs: 20,
  paths: [
    path("xenstore+watch", spread(100, 40.2, 75.9)),
    path("xenstore+poll", spread(100, 35.1, 70.3)),
    path("xenstore+evtchn", spread(100, 22.4, 48.8)),
    path("evtchn+evtchn", spread(100, 21.7, 39.5)),
  ],
  xlSaveCMs: null,
};
const MIN_SAMPLE = 21.7;

interface SvgText { x: number; y: number; anchor: string; size: number; text: string }

function svgSize(svg: string): { width: number; height: number } {
  const m = /<svg [^>]*width="([0-9.]+)" height="([0-9.]+)"/.exec(svg);
  return { width: Number(m?.[1]), height: Number(m?.[2]) };
}

function texts(svg: string): SvgText[] {
  return [...svg.matchAll(/<text ([^>]*)>([^<]*)<\/text>/g)].map(([, attrs = "", text = ""]) => {
    const attr = (n: string): string | undefined => new RegExp(`(?:^| )${n}="([^"]*)"`).exec(attrs)?.[1];
    return { x: Number(attr("x")), y: Number(attr("y")), anchor: attr("text-anchor") ?? "start", size: Number(attr("font-size") ?? FONT_SIZE), text };
  });
}

/** The horizontal extent of a text element, from its anchor and its estimated width. */
function extent(t: SvgText): [number, number] {
  const w = estimateTextWidth(t.text, t.size);
  if (t.anchor === "middle") return [t.x - w / 2, t.x + w / 2];
  if (t.anchor === "end") return [t.x - w, t.x];
  return [t.x, t.x + w];
}

/** The x axis's tick labels: centred, below the plot. */
const xLabels = (svg: string): SvgText[] => texts(svg).filter((t) => t.anchor === "middle" && /^[0-9.]+$/.test(t.text));
/** The y axis's labels: right-aligned left of the plot. */
const yLabels = (svg: string): SvgText[] => texts(svg).filter((t) => t.anchor === "end");

describe("latencyCdfSvg", () => {
  it("keeps every text, the legend's included, inside the canvas", () => {
    const svg = latencyCdfSvg(RESULT);
    const { width, height } = svgSize(svg);
    const legend = texts(svg).filter((t) => RESULT.paths.some((p) => p.name === t.text));
    expect(legend.map((t) => t.text)).toEqual(RESULT.paths.map((p) => p.name));
    for (const t of texts(svg)) {
      const [left, right] = extent(t);
      expect({ text: t.text, fits: left >= 0 && right <= width && t.y <= height && t.y - t.size >= 0 }).toEqual({ text: t.text, fits: true });
    }
  });

  it("makes room for long path names and for more paths than the default height holds", () => {
    const many = { ...RESULT, paths: Array.from({ length: 16 }, (_, i) => path(`a-rather-long-path-name-${i}+evtchn`, spread(10, 10 + i, 20 + i))) };
    const svg = latencyCdfSvg(many);
    const { width, height } = svgSize(svg);
    expect(height).toBeGreaterThan(420);
    for (const t of texts(svg)) {
      const [left, right] = extent(t);
      expect({ text: t.text, fits: left >= 0 && right <= width && t.y <= height }).toEqual({ text: t.text, fits: true });
    }
  });

  it("starts the x axis a little below the fastest sample and ends it a little above the slowest", () => {
    const svg = latencyCdfSvg(RESULT);
    const ticks = xLabels(svg).map((t) => Number(t.text));
    expect(ticks.length).toBeGreaterThanOrEqual(2);
    expect(Math.min(...ticks)).toBeGreaterThanOrEqual(0.9 * MIN_SAMPLE);
    expect(Math.max(...ticks)).toBeLessThanOrEqual(1.1 * 75.9);
    // The fastest sample is drawn near the y axis, not in the middle of the plot.
    const axisX = Number(/<line x1="([0-9.]+)" y1="[0-9.]+" x2="\1" y2="[0-9.]+" stroke="black"\/>/.exec(svg)?.[1]);
    const leftmost = Math.min(...[...svg.matchAll(/points="([^"]*)"/g)].flatMap(([, pts = ""]) => pts.split(" ").map((p) => Number(p.split(",")[0]))));
    expect(leftmost - axisX).toBeGreaterThanOrEqual(0);
    expect(leftmost - axisX).toBeLessThan(0.05 * svgSize(svg).width);
  });

  it("never prints two y labels on top of each other: 0.99 gives way to 1 unless the plot is tall enough", () => {
    const svg = latencyCdfSvg(RESULT);
    const ys = yLabels(svg).map((t) => t.y);
    for (let i = 1; i < ys.length; i++) expect(Math.abs((ys[i] ?? 0) - (ys[i - 1] ?? 0))).toBeGreaterThanOrEqual(FONT_SIZE);
    expect(yLabels(svg).map((t) => t.text)).toEqual(["1", "0.9", "0.5", "0"]);
    expect(yLabels(latencyCdfSvg(RESULT, 760, 2000)).map((t) => t.text)).toEqual(["1", "0.99", "0.9", "0.5", "0"]);
  });

  it("escapes text that would break the XML", () => {
    const svg = latencyCdfSvg({ ...RESULT, guestKernel: "6.1 <patched> & more" });
    expect(svg).toContain("guest 6.1 &lt;patched&gt; &amp; more");
  });
});

describe("the axes' helpers", () => {
  it("timeRange pads the samples by a small factor, ignores non-positive ones and has a default", () => {
    const r = timeRange([0, -1, 12, 50, NaN]);
    expect(r.lo).toBeGreaterThanOrEqual(0.9 * 12);
    expect(r.lo).toBeLessThan(12);
    expect(r.hi).toBeGreaterThan(50);
    expect(r.hi).toBeLessThanOrEqual(1.1 * 50);
    expect(timeRange([])).toEqual({ lo: 1, hi: 10 });
    // 100k samples: no spread into Math.min (the call stack would overflow).
    expect(timeRange(spread(200_000, 1, 2)).lo).toBeCloseTo(1 / 1.05);
  });

  it("timeTicks takes 1-2-5, then every digit, then two digits, whichever first gives three", () => {
    expect(timeTicks(0.5, 120)).toEqual([0.5, 1, 2, 5, 10, 20, 50, 100]);
    expect(timeTicks(20.6, 79.7)).toEqual([30, 40, 50, 60, 70]);
    expect(timeTicks(11.4, 13.9)).toEqual([12, 13]);
    // Printed as they are: no 0.30000000000000004.
    const fine = timeTicks(0.25, 0.45);
    expect([fine[0], fine[5], fine.at(-1), fine.length]).toEqual([0.25, 0.3, 0.45, 21]);
  });

  it("spacedLabels keeps the important labels and drops those too close to one kept", () => {
    expect(spacedLabels([0, 100, 50, 99, 10], (v) => v, 5)).toEqual([0, 10, 50, 100]);
  });
});

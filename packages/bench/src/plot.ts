// A latency plot without dependencies: one cumulative distribution curve per path, log-scaled
// time axis, as SVG. A CDF shows median and tail at once, which is what the benchmark is about.
import type { BenchResult } from "@fastsuspend/cli";

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

export const FONT_SIZE = 12;
const TITLE_SIZE = 14;
const NOTE_SIZE = 11;

/**
 * The width of `text` in a sans-serif font of `size` px, estimated from above (0.62 em a
 * character; digits and most letters are narrower). An SVG has no text metrics outside a browser,
 * and an estimate too small is what pushed the legend off the right edge.
 */
export function estimateTextWidth(text: string, size: number = FONT_SIZE): number {
  return text.length * size * 0.62;
}

/**
 * The time axis: from a little below the fastest sample to a little above the slowest, so that
 * the curves fill the plot (it once started at 0.1 ms for data from 10 ms up: the left half of the
 * plot was empty). Log scale, so the margin is a factor.
 */
export function timeRange(samples: readonly number[]): { lo: number; hi: number } {
  let min = Infinity;
  let max = -Infinity;
  // A loop, not Math.min(...samples): spreading 100k samples overflows the call stack.
  for (const x of samples) {
    if (!(x > 0) || !Number.isFinite(x)) continue;
    min = Math.min(min, x);
    max = Math.max(max, x);
  }
  if (min === Infinity) return { lo: 1, hi: 10 };
  const margin = 1.05;
  return { lo: min / margin, hi: max * margin };
}

/** Digits per decade: 1-2-5, then every digit, then two digits (for a range within one decade). */
const TICK_SERIES: readonly { ks: readonly number[]; shift: number }[] = [
  { ks: [1, 2, 5], shift: 0 },
  { ks: [1, 2, 3, 4, 5, 6, 7, 8, 9], shift: 0 },
  { ks: Array.from({ length: 90 }, (_, i) => i + 10), shift: 1 },
];

/** Axis ticks in [lo, hi]: the coarsest series that gives at least three (spacedLabels thins them). */
export function timeTicks(lo: number, hi: number): number[] {
  let ticks: number[] = [];
  for (const { ks, shift } of TICK_SERIES) {
    ticks = [];
    for (let d = Math.floor(Math.log10(lo)); d <= Math.ceil(Math.log10(hi)); d++) {
      for (const k of ks) {
        // Rounded: 3 * 10 ** -1 is 0.30000000000000004, and the label prints the value.
        const v = Number((k * 10 ** (d - shift)).toPrecision(6));
        if (v >= lo && v <= hi) ticks.push(v);
      }
    }
    if (ticks.length >= 3) return ticks;
  }
  return ticks;
}

/**
 * Keeps the labels, taken in order of importance, whose position is at least `gap` from every one
 * kept before; returns them in position order. The y axis's 0.99 sits 1% of the plot's height
 * below 1 (3.5 px at the default size): printed both, they overlapped.
 */
export function spacedLabels<T>(byImportance: readonly T[], position: (t: T) => number, gap: number): T[] {
  const kept: T[] = [];
  for (const t of byImportance) {
    if (kept.every((k) => Math.abs(position(k) - position(t)) >= gap)) kept.push(t);
  }
  return kept.sort((a, b) => position(a) - position(b));
}

/** The quantiles labelled on the y axis, most important first (the ends, the median, the tail). */
const QUANTILES = [0, 1, 0.5, 0.9, 0.99] as const;

const esc = (s: string): string => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
const fmt = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : "-");

interface LegendEntry {
  name: string;
  /** The second line: the numbers the y axis cannot show (its p99 is squeezed against 1). */
  note: string;
  color: string;
}

const LEGEND = { gap: 12, swatch: 20, textAt: 26, row: 32, pad: 10 } as const;

function legendWidth(entries: readonly LegendEntry[]): number {
  const text = Math.max(0, ...entries.map((e) => Math.max(estimateTextWidth(e.name), estimateTextWidth(e.note, NOTE_SIZE))));
  return LEGEND.textAt + text;
}

export function latencyCdfSvg(result: BenchResult, width = 760, height = 420): string {
  const entries: LegendEntry[] = result.paths.map((p, i) => ({
    name: p.name,
    note: `median ${fmt(p.totalMs.median)}, p99 ${fmt(p.totalMs.p99)} ms`,
    color: COLORS[i % COLORS.length] ?? "black",
  }));
  // The right margin is what the legend needs: it is drawn inside the canvas, whatever the names.
  const m = { l: 60, r: LEGEND.gap + legendWidth(entries) + LEGEND.pad, t: 50, b: 45 };
  // A legend taller than the plot makes the canvas taller instead of running off its bottom.
  const canvasHeight = Math.max(height, m.t + entries.length * LEGEND.row + m.b);
  const w = width - m.l - m.r;
  const h = canvasHeight - m.t - m.b;
  const { lo, hi } = timeRange(result.paths.flatMap((p) => p.samples.totalMs));
  const lx = (v: number): number => m.l + ((Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * w;
  const ly = (q: number): number => m.t + (1 - q) * h;
  const subtitle = [result.xenstored, `guest ${result.guestKernel}`, result.xen === "" ? undefined : `Xen ${result.xen}`].filter((s) => s !== undefined).join(", ");
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${canvasHeight}" font-family="sans-serif" font-size="${FONT_SIZE}">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${m.l}" y="20" font-size="${TITLE_SIZE}">Suspend/resume cycle latency, CDF per path</text>`,
    `<text x="${m.l}" y="37" font-size="${NOTE_SIZE}" fill="#555">${esc(subtitle)}</text>`,
    `<line x1="${m.l}" y1="${m.t + h}" x2="${m.l + w}" y2="${m.t + h}" stroke="black"/>`,
    `<line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${m.t + h}" stroke="black"/>`,
  ];
  // x labels are centred on their tick: two may not be closer than the wider label plus a space.
  const ticks = timeTicks(lo, hi);
  const widest = Math.max(0, ...ticks.map((v) => estimateTextWidth(String(v))));
  for (const v of spacedLabels(ticks, lx, widest + 6)) {
    const x = lx(v).toFixed(1);
    out.push(`<line x1="${x}" y1="${m.t}" x2="${x}" y2="${m.t + h}" stroke="#ddd"/>`);
    out.push(`<text x="${x}" y="${m.t + h + 15}" text-anchor="middle">${v}</text>`);
  }
  for (const q of spacedLabels(QUANTILES, ly, FONT_SIZE + 2)) {
    out.push(`<line x1="${m.l}" y1="${ly(q).toFixed(1)}" x2="${m.l + w}" y2="${ly(q).toFixed(1)}" stroke="#eee"/>`);
    out.push(`<text x="${m.l - 6}" y="${(ly(q) + 4).toFixed(1)}" text-anchor="end">${q}</text>`);
  }
  out.push(`<text x="${m.l + w / 2}" y="${canvasHeight - 8}" text-anchor="middle">cycle time, ms (log scale)</text>`);
  result.paths.forEach((p, i) => {
    const s = [...p.samples.totalMs].filter((x) => x > 0).sort((a, b) => a - b);
    if (s.length === 0) return;
    const pts = s.map((v, j) => `${lx(v).toFixed(1)},${ly((j + 1) / s.length).toFixed(1)}`);
    out.push(`<polyline fill="none" stroke="${entries[i]?.color ?? "black"}" stroke-width="2" points="${pts.join(" ")}"/>`);
  });
  const x0 = m.l + w + LEGEND.gap;
  entries.forEach((e, i) => {
    const y = m.t + 12 + i * LEGEND.row;
    out.push(`<line x1="${x0}" y1="${y - 4}" x2="${x0 + LEGEND.swatch}" y2="${y - 4}" stroke="${e.color}" stroke-width="3"/>`);
    out.push(`<text x="${x0 + LEGEND.textAt}" y="${y}">${esc(e.name)}</text>`);
    out.push(`<text x="${x0 + LEGEND.textAt}" y="${y + 14}" font-size="${NOTE_SIZE}" fill="#555">${esc(e.note)}</text>`);
  });
  out.push("</svg>");
  return out.join("\n");
}

// A latency plot without dependencies: one cumulative distribution curve per path, log-scaled
// time axis, as SVG. A CDF shows median and tail at once, which is what the benchmark is about.
import type { BenchResult } from "@fastsuspend/cli";

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

export function latencyCdfSvg(result: BenchResult, width = 760, height = 420): string {
  const m = { l: 60, r: 200, t: 30, b: 45 };
  const w = width - m.l - m.r;
  const h = height - m.t - m.b;
  const all = result.paths.flatMap((p) => p.samples.totalMs).filter((x) => x > 0);
  const lo = Math.max(0.1, Math.min(...all, 1));
  const hi = Math.max(...all, 10);
  const lx = (v: number): number => m.l + ((Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * w;
  const ly = (q: number): number => m.t + (1 - q) * h;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${m.l}" y="18" font-size="14">Suspend/resume cycle latency, CDF per path (${result.xenstored}, guest ${result.guestKernel})</text>`,
    `<line x1="${m.l}" y1="${m.t + h}" x2="${m.l + w}" y2="${m.t + h}" stroke="black"/>`,
    `<line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${m.t + h}" stroke="black"/>`,
  ];
  for (let d = Math.floor(Math.log10(lo)); d <= Math.ceil(Math.log10(hi)); d++) {
    for (const k of [1, 2, 5]) {
      const v = k * 10 ** d;
      if (v < lo || v > hi) continue;
      const x = lx(v).toFixed(1);
      out.push(`<line x1="${x}" y1="${m.t}" x2="${x}" y2="${m.t + h}" stroke="#ddd"/>`);
      out.push(`<text x="${x}" y="${m.t + h + 15}" text-anchor="middle">${v}</text>`);
    }
  }
  for (const q of [0, 0.5, 0.9, 0.99, 1]) {
    out.push(`<line x1="${m.l}" y1="${ly(q).toFixed(1)}" x2="${m.l + w}" y2="${ly(q).toFixed(1)}" stroke="#eee"/>`);
    out.push(`<text x="${m.l - 6}" y="${(ly(q) + 4).toFixed(1)}" text-anchor="end">${q}</text>`);
  }
  out.push(`<text x="${m.l + w / 2}" y="${height - 8}" text-anchor="middle">cycle time, ms (log scale)</text>`);
  result.paths.forEach((p, i) => {
    const s = [...p.samples.totalMs].filter((x) => x > 0).sort((a, b) => a - b);
    if (s.length === 0) return;
    const color = COLORS[i % COLORS.length] ?? "black";
    const pts = s.map((v, j) => `${lx(v).toFixed(1)},${ly((j + 1) / s.length).toFixed(1)}`);
    out.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.join(" ")}"/>`);
    const y = m.t + 14 + i * 18;
    out.push(`<line x1="${m.l + w + 12}" y1="${y - 4}" x2="${m.l + w + 32}" y2="${y - 4}" stroke="${color}" stroke-width="3"/>`);
    out.push(`<text x="${m.l + w + 38}" y="${y}">${p.name} (med ${p.totalMs.median.toFixed(1)})</text>`);
  });
  out.push("</svg>");
  return out.join("\n");
}

// The benchmark table: avg/min/max/median/p99 for suspend, resume and the whole cycle, and each
// path's cycle median relative to the baseline (libxl's xenstore+watch). The host side reuses it.
import { BASELINE_PATH, type Summary } from "@fastsuspend/coordinator";

import type { BenchResult, CheckpointLoopResult, GuestPhasesMs, ToolstackResult } from "./bench-result";

const fmt = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : "-");
const five = (s: Summary): string[] => [s.avg, s.min, s.max, s.median, s.p99].map(fmt);

function pad(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join("  ").trimEnd()).join("\n");
}

const blockLine = (size: number, medians: number[]): string => `  cycle median per ${size} cycles: ${medians.map((m) => fmt(m)).join(", ")} ms`;

/** The guest's own view of a path's suspends: its suspend and resume, and its three slowest steps. */
function guestLine(what: string, g: GuestPhasesMs): string {
  const slow = Object.entries(g.steps).sort(([, a], [, b]) => b.median - a.median).slice(0, 3)
    .map(([k, v]) => `${k} ${fmt(v.median)}`).join(", ");
  return `  ${what}: guest suspend med ${fmt(g.suspend.median)} (p99 ${fmt(g.suspend.p99)}), resume med ${fmt(g.resume.median)} (p99 ${fmt(g.resume.p99)}); slowest steps: ${slow || "-"} (n=${g.n})`;
}

/**
 * A toolstack row against the stock kernel's row of the same tool, guest type and hypervisor in the
 * same run (issue 14's targets): the patched guest's median blackout as a fraction of the stock guest's,
 * and, for xl remus, its checkpoint rate as a multiple of it.
 */
export function vsStock(t: ToolstackResult, rows: readonly ToolstackResult[]): string {
  if (t.guestKernel.startsWith("stock")) return "";
  const stock = rows.find((r) => r.tool === t.tool && (r.guestType ?? "pv") === (t.guestType ?? "pv") && r.hypervisor === t.hypervisor && r.guestKernel.startsWith("stock"));
  if (stock === undefined) return "";
  const ratio = (a: number, b: number): string => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}x` : "-");
  const rate = t.perSecond !== undefined && stock.perSecond !== undefined ? `, rate ${ratio(t.perSecond, stock.perSecond)}` : "";
  return `; vs stock: blackout ${ratio(t.blackoutMs.median, stock.blackoutMs.median)}${rate}`;
}

/** The run's other gaps, when there were any: said apart from the blackout, never added to it. */
const stalls = (t: ToolstackResult): string => (t.stallsMs !== undefined && t.stallsMs.max > 0 ? `, stalled outside it med ${fmt(t.stallsMs.median)} (max ${fmt(t.stallsMs.max)})` : "");

/** Where the save helper marked the memory sent: the time after "suspended" split in two. */
function memorySplit(t: ToolstackResult, then: string): string {
  const m = t.phases.memoryMs;
  const a = t.phases.afterMemoryMs;
  return m === undefined || a === undefined || m.n === 0 ? "" : ` (memory sent ${fmt(m.median)}, then ${fmt(a.median)} to ${then})`;
}

/** A toolstack row: what a user of stock xl sees on this guest kernel. */
function toolstackLine(t: ToolstackResult, rows: readonly ToolstackResult[] = []): string {
  const g = t.guestMs === undefined ? "" : `; guest's own suspend ${fmt(t.guestMs.suspend.median)}, resume ${fmt(t.guestMs.resume.median)}`;
  if (t.perSecond !== undefined) {
    return `  ${t.tool}, ${t.guestKernel} ${t.guestType ?? "pv"} guest: ${t.n} checkpoints (${fmt(t.perSecond)}/s, ${t.failed} without a suspended line), blackout per checkpoint med ${fmt(t.blackoutMs.median)} (p99 ${fmt(t.blackoutMs.p99)}); libxl: request -> suspended med ${fmt(t.phases.suspendMs.median)}, suspended -> next request med ${fmt(t.phases.saveAndResumeMs.median)}${memorySplit(t, "the next request")}${vsStock(t, rows)}${t.errors.length > 0 ? `; ${t.errors.join("; ")}` : ""}`;
  }
  return `  ${t.tool}, ${t.guestKernel} ${t.guestType ?? "pv"} guest: ${t.ok}/${t.n} ok, total med ${fmt(t.totalMs.median)} (p99 ${fmt(t.totalMs.p99)}), guest blackout med ${fmt(t.blackoutMs.median)} (p99 ${fmt(t.blackoutMs.p99)})${stalls(t)}; libxl: request ${fmt(t.phases.setupMs.median)} after start, guest suspended ${fmt(t.phases.suspendMs.median)} later, then ${fmt(t.phases.saveAndResumeMs.median)} to exit${memorySplit(t, "exit")}${g}${vsStock(t, rows)}`;
}

/** A checkpoint loop: its rate, its drift per block of cycles, and whether its budget stopped it. */
function checkpointLoopLines(c: CheckpointLoopResult): string[] {
  const budget = c.budgetSeconds === undefined ? "" : ` --for ${c.budgetSeconds}`;
  const guest = c.guestSuspend === "fast" ? " (fast-suspend guest)" : "";
  const lines = [`checkpoint --interval 0 --count ${c.requested}${budget}${guest}, XS_RESUME ${c.xsResume}: ${c.ok} ok, ${c.failed} failed via ${c.path}, ${fmt(c.cyclesPerSecond)} cycles/s (cycle median ${fmt(c.totalMs.median)} ms, p99 ${fmt(c.totalMs.p99)})`];
  const perThousand = c.totalMsPerThousand ?? [];
  // Past 1000 cycles the per-1000 line shows the drift; a hundred per-100 medians would bury the table.
  if (perThousand.length > 1) lines.push(blockLine(1000, perThousand));
  else if (c.totalMsPerHundred !== undefined && c.totalMsPerHundred.length > 1) lines.push(blockLine(100, c.totalMsPerHundred));
  if (c.stoppedBy === "time") {
    const its = c.budgetSeconds === undefined ? "its time budget" : `its ${c.budgetSeconds} s budget`;
    lines.push(`  stopped by ${its} after ${c.ok + c.failed} cycles`);
  }
  return lines;
}

export function formatTable(result: Pick<BenchResult, "paths" | "xlSaveCMs"> & Partial<BenchResult>, baseline: string = BASELINE_PATH): string {
  const base = result.paths.find((p) => p.name === baseline);
  const baseMedian = base?.totalMs.median;
  const stat = ["avg", "min", "max", "med", "p99"];
  const header = ["path", "ok/n", ...stat.map((s) => `susp ${s}`), ...stat.map((s) => `res ${s}`), ...stat.map((s) => `cyc ${s}`), `vs ${baseline}`];
  const rows = result.paths.map((p) => {
    const ratio = baseMedian !== undefined && Number.isFinite(baseMedian) && baseMedian > 0 && Number.isFinite(p.totalMs.median)
      ? `${(p.totalMs.median / baseMedian).toFixed(2)}x`
      : "-";
    return [p.name, `${p.ok}/${p.n}`, ...five(p.suspendMs), ...five(p.resumeMs), ...five(p.totalMs), ratio];
  });
  const lines = [pad([header, ...rows])];
  const meta = [result.xen && `xen ${result.xen}`, result.xenstored, result.guestKernel && `guest ${result.guestKernel}`].filter(
    (x): x is string => typeof x === "string" && x !== "",
  );
  if (meta.length > 0) lines.unshift(meta.join(", "));
  lines.push("times in ms; ratio = cycle median / baseline cycle median (lower is faster)");
  if (base === undefined) lines.push(`baseline ${baseline} was not measured: no ratios`);
  const x = result.xlSaveCMs;
  if (x !== null) lines.push(`xl save -c (to /dev/null): median ${fmt(x.median)} ms, min ${fmt(x.min)}, max ${fmt(x.max)} (n=${x.n})`);
  const guest = result.paths.filter((p) => p.guestMs !== undefined);
  if (guest.length > 0 || x?.guestMs !== undefined) lines.push("the guest's own clock (kernel patch 0005's tracepoints), medians in ms:");
  for (const p of guest) if (p.guestMs) lines.push(guestLine(p.name, p.guestMs));
  if (x?.guestMs) lines.push(guestLine("xl save -c", x.guestMs));
  for (const c of result.checkpointLoops ?? []) lines.push(...checkpointLoopLines(c));
  // One block per hypervisor, in the order the run measured them.
  const toolstack = result.toolstack ?? [];
  for (const hv of [...new Set(toolstack.map((t) => t.hypervisor))]) {
    lines.push(`stock xl on ${hv === "" ? "an unnamed hypervisor" : hv}, measured by the guest (medians in ms):`);
    for (const t of toolstack) if (t.hypervisor === hv) lines.push(toolstackLine(t, toolstack));
  }
  for (const p of result.paths) if (p.failed > 0) lines.push(`${p.name}: ${p.failed} failed: ${p.errors[0] ?? ""}`);
  return lines.join("\n");
}

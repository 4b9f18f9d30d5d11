// `fastsuspend status` for people: fastsuspendd's answer as a table of domains, or one domain in
// detail (`--json` prints the answer as it came). The answer is read field by field, each checked:
// it comes off a socket, and a field a newer or older daemon lacks must not break the command.
import type { Capabilities } from "@fastsuspend/coordinator";

import { infoLines } from "./commands";

type Json = Record<string, unknown>;

const record = (v: unknown): Json | undefined => (typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Json) : undefined);
const num = (v: unknown): number | undefined => (typeof v === "number" && Number.isFinite(v) ? v : undefined);
const text = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);
const ms = (x: number): string => `${x.toFixed(2)} ms`;

/** 3725 -> "1h 02m 05s": a daemon's uptime at a glance. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const two = (n: number): string => String(n).padStart(2, "0");
  if (d > 0) return `${d}d ${h}h ${two(m)}m`;
  if (h > 0) return `${h}h ${two(m)}m ${two(s % 60)}s`;
  if (m > 0) return `${m}m ${two(s % 60)}s`;
  return `${s}s`;
}

/** "median 1.20 ms, p99 3.40 ms (last 100)", or undefined when there are no samples. */
function latency(summary: unknown): string | undefined {
  const s = record(summary);
  const n = num(s?.n);
  const median = num(s?.median);
  const p99 = num(s?.p99);
  if (n === undefined || n === 0 || median === undefined || p99 === undefined) return undefined;
  return `median ${ms(median)}, p99 ${ms(p99)} (last ${n})`;
}

/** A checkpoint loop: whether it runs, how far it got, its cycle latency. "-" for none. */
export function loopText(loop: unknown): string {
  const l = record(loop);
  if (l === undefined) return "-";
  const state = l.running === true ? "running" : `stopped (${text(l.stoppedBy) ?? "?"})`;
  const count = num(l.count);
  const done = `${num(l.done) ?? 0}${count === undefined ? "" : `/${count}`}`;
  const skipped = num(l.skipped) ?? 0;
  const cycle = latency(l.cycleMs);
  return `${state}, ${done} done, ${num(l.ok) ?? 0} ok, ${num(l.failed) ?? 0} failed${skipped > 0 ? `, ${skipped} skipped` : ""}${cycle === undefined ? "" : `; cycle ${cycle}`}`;
}

function sessionText(session: unknown): string {
  const s = record(session);
  if (s === undefined) return "-";
  const path = text(s.path);
  return `${text(s.state) ?? "?"}${path === undefined ? "" : ` via ${path}`}`;
}

/** Left-aligned columns, two spaces apart, the last one unpadded. */
function table(rows: readonly string[][]): string[] {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join("  "));
}

function daemonLine(daemon: unknown): string {
  const d = record(daemon);
  const pid = num(d?.pid);
  const up = num(d?.uptimeS);
  const clients = num(d?.clients);
  const parts = [
    pid === undefined ? undefined : `pid ${pid}`,
    up === undefined ? undefined : `up ${formatDuration(up)}`,
    clients === undefined ? undefined : `${clients} client${clients === 1 ? "" : "s"} connected`,
    d?.stopping === true ? "stopping" : undefined,
  ].filter((p): p is string => p !== undefined);
  return `fastsuspendd: ${parts.join(", ")}`;
}

function journalLines(journal: unknown): string[] {
  if (!Array.isArray(journal) || journal.length === 0) return [];
  const entries = journal.map((e) => {
    const r = record(e);
    return `domain ${num(r?.domid) ?? "?"} (${text(r?.reason) ?? "?"} in flight since ${text(r?.since) ?? "?"})`;
  });
  // The journal lists what the daemon may have left suspended: worth a line of its own.
  return [`journal (guests it may leave suspended): ${entries.join(", ")}`];
}

/** `status` without DOM: the daemon, then one row per domain. */
export function formatStatusAll(st: Json, domains: readonly unknown[]): string {
  const rows = domains.map((d) => {
    const r = record(d);
    return [String(num(r?.domid) ?? "?"), text(r?.state) ?? "?", sessionText(r?.session), loopText(r?.loop)];
  });
  const body = rows.length === 0 ? ["no guest domains"] : table([["DOMID", "STATE", "SESSION", "CHECKPOINT LOOP"], ...rows]);
  return [daemonLine(st.daemon), ...body, ...journalLines(record(st.daemon)?.journal)].join("\n");
}

function lastText(last: unknown): string | undefined {
  const l = record(last);
  if (l === undefined) return undefined;
  const timings = Object.entries(record(l.timings) ?? {})
    .filter((e): e is [string, number] => typeof e[1] === "number")
    .map(([k, v]) => `${k} ${v.toFixed(2)}`);
  const path = text(l.path);
  return `last: ${text(l.op) ?? "?"} at ${text(l.at) ?? "?"}${path === undefined ? "" : ` via ${path}`}${timings.length > 0 ? ` (${timings.join(", ")})` : ""}`;
}

/** `status DOM`: info's lines, then what the daemon holds and did for the domain. */
export function formatStatusDomain(st: Json): string {
  const caps = record(st.capabilities);
  const chosen = text(st.chosen) ?? "?";
  const head = caps === undefined ? [`domain ${num(st.domid) ?? "?"}: ${text(st.state) ?? "?"}`] : infoLines(caps as unknown as Capabilities, chosen);
  const session = record(st.session);
  const lock = session === undefined || typeof session.lockHeldNow !== "boolean" ? "" : `, suspend lock held now: ${session.lockHeldNow ? "yes" : "no"}`;
  const rolling = record(st.rolling);
  const suspend = latency(rolling?.suspendMs);
  const cycle = latency(rolling?.cycleMs);
  const lines = [
    ...head,
    `state (fastsuspendd): ${text(st.state) ?? "?"}`,
    `session: ${sessionText(st.session)}${lock}`,
    `checkpoint loop: ${loopText(st.loop)}`,
    lastText(st.last),
    suspend === undefined ? undefined : `suspend latency: ${suspend}`,
    cycle === undefined ? undefined : `cycle latency: ${cycle}`,
    num(st.queued) === undefined ? undefined : `queued requests: ${num(st.queued) ?? 0}`,
    typeof st.journalled === "boolean" ? `in the daemon's journal: ${st.journalled ? "yes" : "no"}` : undefined,
  ];
  return lines.filter((l): l is string => l !== undefined).join("\n");
}

/** The daemon's status answer for people; an answer of an unknown shape is printed as JSON. */
export function formatStatus(answer: unknown): string {
  const st = record(answer);
  if (st !== undefined && Array.isArray(st.domains)) return formatStatusAll(st, st.domains);
  if (st !== undefined && num(st.domid) !== undefined) return formatStatusDomain(st);
  return JSON.stringify(answer, null, 2);
}

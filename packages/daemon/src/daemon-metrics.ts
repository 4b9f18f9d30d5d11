// What fastsuspendd exports to Prometheus (names, labels, help), in one place: docs/daemon.md
// lists the same. Per-domain series carry the domain's name and its domid (`domain="web",domid="3"`):
// the name is what an operator knows, the domid tells apart two lives of one name.
import { choosePath, isCoordinatorError, parsePath, type Capabilities } from "@fastsuspend/coordinator";
import { isXenError } from "@fastsuspend/xen";

import type { EventLoopLag } from "./loop-lag";
import { Counter, Gauge, Histogram, Registry } from "./metrics";
import { DaemonError, type DaemonErrorCode } from "./protocol";

/** Why a checkpoint cycle failed: a bounded label set, derived from the error's code (never its text). */
export type FailureReason = "timeout" | "locked" | "busy" | "domain" | "interrupted" | "state" | "no-path" | "closed" | "shutdown" | "xen" | "internal";

/** Typed over every code (the coordinator's and the daemon's), so that a new code has to be given a reason here. */
const REASON_BY_CODE: Record<DaemonErrorCode, FailureReason> = {
  ETIMEDOUT: "timeout",
  ELOCKED: "locked",
  EBUSY: "busy",
  // The domain is not there to work on: gone, dying, crashed or shut down (or dom0).
  ENODOMAIN: "domain",
  EDYING: "domain",
  EDOMAIN: "domain",
  ECONTROLDOMAIN: "domain",
  EINTERRUPTED: "interrupted",
  // Not a state the step can start from (the domain's or the session's).
  ESUSPENDED: "state",
  ENOTSUSPENDED: "state",
  EINPROGRESS: "state",
  ESESSION: "state",
  ENOLOOP: "state",
  ENOPATH: "no-path",
  ECLOSED: "closed",
  ESHUTDOWN: "shutdown",
  EINTERNAL: "internal",
  // Request errors: a cycle cannot fail with these.
  EPARSE: "internal",
  EINVAL: "internal",
  EUNKNOWNOP: "internal",
  ETOOBIG: "internal",
};

export function failureReason(err: unknown): FailureReason {
  if (err instanceof DaemonError || isCoordinatorError(err)) return REASON_BY_CODE[err.code];
  if (isXenError(err, "ESRCH")) return "domain";
  if (isXenError(err, "EAGAIN")) return "locked";
  if (isXenError(err)) return "xen";
  return "internal";
}

/**
 * Why a domain's session is not on the path it would have had: "failed-over" (the coordinator left
 * the first path after a failure), "channel-absent", "channel-garbage", "channel-unbindable",
 * "channel-locked" (no usable suspend event channel in the guest, so the trigger is libxl's
 * xenstore write or a shutdown), or "none". A path asked for (`--path`) is not a fallback.
 */
export function fallbackReason(caps: Capabilities | undefined, path: string, requested: string | undefined): string {
  let expected: string | undefined;
  try {
    expected = caps === undefined ? undefined : choosePath(caps, requested);
  } catch {
    expected = undefined;
  }
  if (expected !== undefined && expected !== path) return "failed-over";
  if (requested !== undefined || parsePath(path)?.trigger === "evtchn") return "none";
  const status = caps?.guestChannel.status;
  return status === undefined || status === "ok" ? "none" : `channel-${status}`;
}

/** What the gauges read from the daemon when a scrape renders them. */
export interface DomainView {
  domid: number;
  /** /local/domain/N/name as read once (undefined: none). */
  name: string | undefined;
  /** The path of the domain's session (the open one, or the last one). */
  path: string | undefined;
  caps: Capabilities | undefined;
  requestedPath: string | undefined;
  /** The running checkpoint loop, if any. */
  loop: { intervalMs: number; done: number } | undefined;
}

export interface DaemonView {
  domains(): DomainView[];
  sessionsOpen(): number;
  domainsFollowed(): number;
  clients(): number;
}

/** Domain names are guest-influenced text: kept to a sane length (escaping is the renderer's). */
const MAX_NAME = 128;

export function domainLabels(domid: number, name: string | undefined): { domain: string; domid: number } {
  return { domain: (name ?? "").slice(0, MAX_NAME), domid };
}

/** Seconds since the epoch when this process started (what client libraries call it). */
const PROCESS_START = (Date.now() - process.uptime() * 1000) / 1000;

export class DaemonMetrics {
  readonly registry = new Registry();
  readonly suspendSeconds = new Histogram("fastsuspend_suspend_seconds", "Trigger to confirmed suspended, per path (suspend requests and checkpoint cycles).", ["path"]);
  readonly resumeSeconds = new Histogram("fastsuspend_resume_seconds", "Resume (xc_domain_resume + XS_RESUME), per path.", ["path"]);
  readonly cycleSeconds = new Histogram("fastsuspend_checkpoint_cycle_seconds", "Whole checkpoint cycle (suspend, resume), per path.", ["path"]);
  readonly requests = new Counter("fastsuspend_requests_total", "API requests handled, per op (HTTP scrapes count as metrics).", ["op"]);
  readonly requestErrors = new Counter("fastsuspend_request_errors_total", "API requests answered with an error, per op and error code.", ["op", "code"]);
  readonly cycles = new Counter("fastsuspend_checkpoint_cycles_total", "Checkpoint cycles per domain and result (ok, failed, skipped).", ["domain", "domid", "result"]);
  readonly cycleFailures = new Counter("fastsuspend_checkpoint_cycle_failures_total", "Failed checkpoint cycles per domain and reason (timeout, locked, busy, domain, interrupted, state, no-path, closed, shutdown, xen, internal).", ["domain", "domid", "reason"]);
  readonly handovers = new Counter("fastsuspend_lock_handover_total", "Times the daemon found a domain held or suspended by another tool (xl) and left it alone.");
  readonly requestsHeld = new Counter("fastsuspend_requests_held_total", "status/metrics requests that waited for time-critical work in flight, by how they were let go (after-work, hold-limit).", ["released"]);
  readonly toolstackChecks = new Counter("fastsuspend_toolstack_checks_total", "Checks for an xl process at work on a domain before a cycle or suspend (how=scan: /proc).", ["how"]);

  constructor(view: DaemonView, lag: EventLoopLag) {
    const r = this.registry;
    for (const m of [this.suspendSeconds, this.resumeSeconds, this.cycleSeconds]) r.add(m);
    for (const m of [this.requests, this.requestErrors, this.cycles, this.cycleFailures, this.handovers, this.toolstackChecks, this.requestsHeld]) r.add(m);
    const loops = (): DomainView[] => view.domains().filter((d) => d.loop !== undefined);
    const withPath = (): (DomainView & { path: string })[] => view.domains().filter((d): d is DomainView & { path: string } => d.path !== undefined);
    r.add(new Gauge("fastsuspend_checkpoint_loops_running", "Checkpoint loops running.", [], () => [{ labels: {}, value: loops().length }]));
    r.add(new Gauge("fastsuspend_checkpoint_loop_interval_seconds", "Interval of each running checkpoint loop.", ["domain", "domid"], () =>
      loops().map((d) => ({ labels: domainLabels(d.domid, d.name), value: (d.loop?.intervalMs ?? 0) / 1000 }))));
    r.add(new Gauge("fastsuspend_checkpoint_loop_cycles", "Cycles attempted by each running checkpoint loop.", ["domain", "domid"], () =>
      loops().map((d) => ({ labels: domainLabels(d.domid, d.name), value: d.loop?.done ?? 0 }))));
    r.add(new Gauge("fastsuspend_domain_path_info", "The suspend path (trigger+notification) of each domain's session, and why it fell back (none if it did not).", ["domain", "domid", "path", "fallback"], () =>
      withPath().map((d) => ({ labels: { ...domainLabels(d.domid, d.name), path: d.path, fallback: fallbackReason(d.caps, d.path, d.requestedPath) }, value: 1 }))));
    r.add(new Gauge("fastsuspend_domain_path_fallback", "1 when a domain's session is not on the path it would have had (no usable suspend channel in the guest, or failed over), else 0.", ["domain", "domid"], () =>
      withPath().map((d) => ({ labels: domainLabels(d.domid, d.name), value: fallbackReason(d.caps, d.path, d.requestedPath) === "none" ? 0 : 1 }))));
    r.add(new Gauge("fastsuspend_sessions_open", "Warm per-domain suspend sessions.", [], () => [{ labels: {}, value: view.sessionsOpen() }]));
    r.add(new Gauge("fastsuspend_domains_followed", "Guest domains known to the daemon.", [], () => [{ labels: {}, value: view.domainsFollowed() }]));
    r.add(new Gauge("fastsuspend_clients_connected", "API clients connected to the unix socket.", [], () => [{ labels: {}, value: view.clients() }]));
    r.add(new Gauge("fastsuspend_event_loop_lag_seconds", `How late the daemon's event loop ran a ${lag.resolutionMs} ms timer: 99th percentile over the last ${lag.windowMs / 1000} s window.`, [], () => [{ labels: {}, value: lag.read().p99 }]));
    r.add(new Gauge("fastsuspend_event_loop_lag_max_seconds", `How late the daemon's event loop ran a ${lag.resolutionMs} ms timer: maximum over the last ${lag.windowMs / 1000} s window.`, [], () => [{ labels: {}, value: lag.read().max }]));
    // The standard name and help text, as Prometheus client libraries export it.
    r.add(new Gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", [], () => [{ labels: {}, value: PROCESS_START }]));
  }

  readonly #forgetting = new Map<number, NodeJS.Timeout>();

  /**
   * A domain is gone: its series go too, `afterMs` later so that the scrapes in between still see
   * its last counts. Kept for ever, they would grow with every domain a host ever checkpointed
   * (each migration or reboot is a new domid).
   */
  forgetDomain(domid: number, afterMs: number): void {
    const drop = (): void => {
      this.#forgetting.delete(domid);
      this.cycles.remove({ domid });
      this.cycleFailures.remove({ domid });
    };
    clearTimeout(this.#forgetting.get(domid));
    if (afterMs <= 0) {
      drop();
      return;
    }
    const t = setTimeout(drop, afterMs);
    t.unref();
    this.#forgetting.set(domid, t);
  }

  /** The daemon stops: no timer left behind (the series stay, for a last scrape). */
  stop(): void {
    for (const t of this.#forgetting.values()) clearTimeout(t);
    this.#forgetting.clear();
  }

  render(): string {
    return this.registry.render();
  }
}

// How we learn that a domain has suspended. Every wake-up only means "look at the domain again":
// the session confirms with getInfo, so spurious or stale wakes are harmless.
import { isXenError, type EvtchnHandle, type XenBinding } from "@fastsuspend/xen";

import { sleep } from "./clock";
import { HV_NOTIFY_EV, HV_NOTIFY_EV_ALL, HV_NOTIFY_F_NO_DOM_EXC, hvNotifyRegister, hvNotifyUnregister } from "./hv-notify";
import { rememberNotifyPort, rememberedNotifyPort } from "./notify-port";
import type { Notification } from "./paths";
import type { XenstoreLike, XsWatchLike } from "./xs";

export interface Notifier {
  readonly kind: Notification;
  open(): Promise<void>;
  /**
   * Right before the trigger, under the domain's suspend lock: with hold "operation", put in place
   * what this suspend needs and libxl must not find between our operations (the subscription).
   */
  arm(): void;
  /** Once the suspend is over (confirmed, or given up): with hold "operation", undo arm(). Never throws. */
  release(): string[];
  /** Drop wake-ups left over from before this suspend (cheap; they are harmless anyway). */
  drain(): void;
  /** Resolves on a wake-up or after `ms`, whichever first; rejects only if the source broke. */
  wake(ms: number, signal?: AbortSignal): Promise<void>;
  /** Undo open(); best effort, idempotent; returns what could not be undone. */
  close(): Promise<string[]>;
}

export interface NotifierContext {
  xen: XenBinding;
  xs: XenstoreLike;
  domid: number;
  /** The session's event-channel handle (opened lazily). */
  evtchn: () => EvtchnHandle;
  /**
   * What stays in place between suspends: everything set up in open() ("session"), or only what
   * libxl never looks at ("operation": the guest's channel binding and the suspend subscription
   * only from arm() to release()).
   */
  hold: "session" | "operation";
}

/** We run in dom0: the remote end of the ports we allocate in a guest, and of Xen's registration. */
const CONTROL_DOMID = 0;
/** The poll notification's sleep between getInfo calls. */
const POLL_INTERVAL_MS = 1;

/** How long to wait for the event every interdomain bind leaves pending (then it is dropped). */
const BIND_EVENT_MS = 1000;

/** Binding sets the new local port pending once: consume it, as xc_suspend_evtchn_init_exclusive. */
export async function swallowBindEvent(h: EvtchnHandle, port: number): Promise<void> {
  try {
    await h.wait(port, { timeoutMs: BIND_EVENT_MS });
  } catch (err) {
    if (!isXenError(err, "ETIMEDOUT")) throw err;
  }
  h.unmask(port);
}

async function waitPort(h: EvtchnHandle, port: number, ms: number, signal?: AbortSignal): Promise<void> {
  try {
    await h.wait(port, { timeoutMs: Math.max(0, ms), ...(signal === undefined ? {} : { signal }) });
    h.unmask(port); // re-arm at once: the session looks at the domain, not at the event
  } catch (err) {
    if (isXenError(err, "ETIMEDOUT") || signal?.aborted === true) return;
    throw err;
  }
}

const attempt = (problems: string[], what: string, fn: () => void, ignore: string[] = []): void => {
  try {
    fn();
  } catch (err) {
    if (isXenError(err) && ignore.includes(err.code)) return;
    problems.push(`${what}: ${err instanceof Error ? err.message : String(err)}`);
  }
};

/** getInfo in a loop with a short sleep: no setup, works everywhere, costs CPU. */
export class PollNotifier implements Notifier {
  readonly kind = "poll" as const;
  readonly #ctx: NotifierContext;
  constructor(ctx: NotifierContext) {
    this.#ctx = ctx;
  }
  open(): Promise<void> {
    return Promise.resolve();
  }
  arm(): void {}
  release(): string[] {
    return [];
  }
  drain(): void {}
  wake(ms: number, signal?: AbortSignal): Promise<void> {
    return sleep(Math.min(ms, POLL_INTERVAL_MS), signal);
  }
  close(): Promise<string[]> {
    return Promise.resolve([]);
  }
}

/** xenstored's @releaseDomain (raised from VIRQ_DOM_EXC): libxl's way. */
export class WatchNotifier implements Notifier {
  readonly kind = "watch" as const;
  readonly #ctx: NotifierContext;
  #watch: XsWatchLike | undefined;
  #next: Promise<IteratorResult<unknown>> | undefined;

  constructor(ctx: NotifierContext) {
    this.#ctx = ctx;
  }

  async open(): Promise<void> {
    const { xen, domid } = this.#ctx;
    // @releaseDomain fires only if Xen raises VIRQ_DOM_EXC, which it does not while a port is
    // subscribed for the domain's suspend. libxl subscribes the guest's channel for every save,
    // checkpoint or migration of a guest that has one, and never unsubscribes
    // (xc_suspend_evtchn_release): after any `xl save -c` the guest's suspends stay silent. The
    // session holds the suspend lock, so no one else is using that subscription: reset it.
    xen.subscribeForSuspend(domid, 0);
    this.#watch = await this.#ctx.xs.watch("@releaseDomain");
  }

  /** With hold "operation", an xl may have come and gone since open(): reset its subscription again. */
  arm(): void {
    if (this.#ctx.hold === "operation") this.#ctx.xen.subscribeForSuspend(this.#ctx.domid, 0);
  }

  release(): string[] {
    return [];
  }

  drain(): void {
    const w = this.#watch;
    if (w === undefined || this.#next !== undefined) return;
    for (let n = w.queued; n > 0; n--) void w.next();
  }

  async wake(ms: number, signal?: AbortSignal): Promise<void> {
    const w = this.#watch;
    if (w === undefined) throw new Error("watch notifier is not open");
    // One outstanding next() across wakes: a next() abandoned on timeout would eat a later event.
    const next = (this.#next ??= w.next());
    const timeout = sleep(ms, signal).then(() => "timeout" as const);
    const r = await Promise.race([next, timeout]);
    if (r === "timeout") return;
    this.#next = undefined;
    if (r.done === true) throw new Error("the @releaseDomain watch ended (xenstored connection lost?)");
  }

  async close(): Promise<string[]> {
    const w = this.#watch;
    this.#watch = undefined;
    this.#next = undefined;
    if (w === undefined) return [];
    try {
      await w.close();
      return [];
    } catch (err) {
      return [`unwatch @releaseDomain: ${err instanceof Error ? err.message : String(err)}`];
    }
  }
}

/**
 * Stock Xen's XEN_DOMCTL_subscribe: a port we allocate in the guest's table (remote dom0), bound
 * from dom0; Xen signals it on suspend *instead of* VIRQ_DOM_EXC, so @releaseDomain stops firing
 * for this domain's suspends until we subscribe port 0 again (close()).
 */
export class SubscribeNotifier implements Notifier {
  readonly kind = "evtchn" as const;
  readonly #ctx: NotifierContext;
  #guestPort = 0;
  #local = -1;
  #subscribed = false;

  constructor(ctx: NotifierContext) {
    this.#ctx = ctx;
  }

  async open(): Promise<void> {
    const { xen, xs, domid } = this.#ctx;
    const h = this.#ctx.evtchn();
    // Reuse the port an earlier session allocated (see notify-port.ts): dom0 cannot free it.
    const remembered = await rememberedNotifyPort(xs, domid);
    if (remembered !== undefined) {
      try {
        this.#local = h.bindInterdomain(domid, remembered);
        this.#guestPort = remembered;
      } catch (err) {
        if (!isXenError(err, "EINVAL")) throw err; // EINVAL: not unbound-for-dom0 any more
      }
    }
    if (this.#local < 0) {
      this.#guestPort = xen.allocUnbound(domid, CONTROL_DOMID);
      this.#local = h.bindInterdomain(domid, this.#guestPort);
      await rememberNotifyPort(xs, domid, this.#guestPort);
    }
    await swallowBindEvent(h, this.#local);
    if (this.#ctx.hold === "session") this.#subscribe();
  }

  #subscribe(): void {
    this.#ctx.xen.subscribeForSuspend(this.#ctx.domid, this.#guestPort);
    this.#subscribed = true;
  }

  /** With hold "operation": subscribed only from arm() to release() (last writer wins: ours, over any xl left). */
  arm(): void {
    if (this.#ctx.hold === "operation" && !this.#subscribed) this.#subscribe();
  }

  release(): string[] {
    return this.#ctx.hold === "operation" ? this.#unsubscribe() : [];
  }

  /** Xen falls back to VIRQ_DOM_EXC (and libxl sees @releaseDomain) again. */
  #unsubscribe(): string[] {
    const problems: string[] = [];
    if (this.#subscribed) attempt(problems, `unsubscribe dom${this.#ctx.domid}`, () => { this.#ctx.xen.subscribeForSuspend(this.#ctx.domid, 0); }, ["ESRCH"]);
    this.#subscribed = false;
    return problems;
  }

  drain(): void {
    if (this.#local >= 0 && this.#ctx.evtchn().clearLatched(this.#local)) this.#ctx.evtchn().unmask(this.#local);
  }

  wake(ms: number, signal?: AbortSignal): Promise<void> {
    return waitPort(this.#ctx.evtchn(), this.#local, ms, signal);
  }

  close(): Promise<string[]> {
    // Unsubscribe first.
    const problems = this.#unsubscribe();
    if (this.#local >= 0) {
      const local = this.#local;
      // The guest's port stays allocated (unbound, offered to dom0): dom0 cannot close it, so it
      // is remembered for the next session (notify-port.ts).
      attempt(problems, `unbind port ${local}`, () => { this.#ctx.evtchn().unbind(local); }, ["ENOTCONN", "EBADF"]);
    }
    this.#local = -1;
    return Promise.resolve(problems);
  }
}

/** A registration of ours and the local port bound to it. */
interface HvBinding {
  xenPort: number;
  cookie: bigint;
  local: number;
}

/**
 * The hypervisor series' per-domain, multi-subscriber notification (XEN_DOMCTL_suspend_notify).
 *
 * Two registrations. The session's, for every event and without flags, is what wake() waits on;
 * VIRQ_DOM_EXC is raised as on stock Xen. The quiet one, for suspends only with F_NO_DOM_EXC, is
 * bound only while the suspend is ours (from arm() to release(), whatever the hold: with hold
 * "session" a stock guest's `xl save` does not take our suspend lock, and waits for
 * @releaseDomain, so a registration bound for the whole session would hide its suspend): it holds back
 * VIRQ_DOM_EXC for our own suspends, and only for those. Without it each of our cycles raised the
 * global VIRQ: xenstored fired @releaseDomain, and Xen 4.20's xenconsoled answers each by asking
 * Xen for 32751 domains' info (4.17's asked one at a time); at 20-60 cycles a second it fell
 * behind by thousands, and `xl create` of a new guest then failed (libxl's 10 s wait for the
 * console's tty; session 15's bench and lab, issue 14). A crash, a poweroff and a dying domain
 * still raise it (the quiet registration's mask is suspend only; Xen never holds back "dying").
 */
export class HvNotifyNotifier implements Notifier {
  readonly kind = "virq" as const;
  readonly #ctx: NotifierContext;
  #session: HvBinding | undefined;
  #quiet: HvBinding | undefined;

  constructor(ctx: NotifierContext) {
    this.#ctx = ctx;
  }

  async open(): Promise<void> {
    this.#session = this.#register(HV_NOTIFY_EV_ALL, 0);
    await swallowBindEvent(this.#ctx.evtchn(), this.#session.local);
  }

  /**
   * Best effort: with no slot left (8 per target, EBUSY) or no port, our suspends raise
   * VIRQ_DOM_EXC as on stock Xen; slower for xenstored and xenconsoled, not wrong.
   */
  #quietOn(): void {
    try {
      this.#quiet = this.#register(HV_NOTIFY_EV.suspend, HV_NOTIFY_F_NO_DOM_EXC);
    } catch (err) {
      if (!isXenError(err, "EBUSY") && !isXenError(err, "ENOSPC")) throw err;
    }
  }

  /** REGISTER and bind; a registration that could not be bound is removed before the error is thrown. */
  #register(mask: number, flags: number): HvBinding {
    const { xen, domid } = this.#ctx;
    const { port: xenPort, cookie } = hvNotifyRegister(xen, domid, mask, flags);
    try {
      return { xenPort, cookie, local: this.#ctx.evtchn().bindInterdomain(CONTROL_DOMID, xenPort) };
    } catch (err) {
      // A registration that was never bound outlives this process (Xen drops a registration
      // when its binding closes, and there is none): remove it before giving up.
      attempt([], `unregister suspend_notify dom${domid}`, () => { hvNotifyUnregister(xen, domid, xenPort, cookie); }, ["ENOENT", "ESRCH"]);
      throw err;
    }
  }

  /** UNREGISTER and unbind (its events, the bind's included, go with the port); never throws. */
  #unregister(b: HvBinding | undefined): string[] {
    const problems: string[] = [];
    if (b === undefined) return problems;
    const { xen, domid } = this.#ctx;
    // ENOENT/ESRCH: the domain died and Xen already removed the registration.
    attempt(problems, `unregister suspend_notify dom${domid}`, () => { hvNotifyUnregister(xen, domid, b.xenPort, b.cookie); }, ["ENOENT", "ESRCH"]);
    attempt(problems, `unbind port ${b.local}`, () => { this.#ctx.evtchn().unbind(b.local); }, ["ENOTCONN", "EBADF"]);
    return problems;
  }

  /** The quiet registration, for this suspend only (whatever the hold). */
  arm(): void {
    if (this.#quiet === undefined) this.#quietOn();
  }

  /** A suspend another tool asks for after ours raises VIRQ_DOM_EXC again. */
  release(): string[] {
    const problems = this.#unregister(this.#quiet);
    this.#quiet = undefined;
    return problems;
  }

  drain(): void {
    const local = this.#session?.local;
    if (local !== undefined && this.#ctx.evtchn().clearLatched(local)) this.#ctx.evtchn().unmask(local);
  }

  wake(ms: number, signal?: AbortSignal): Promise<void> {
    return waitPort(this.#ctx.evtchn(), this.#session?.local ?? -1, ms, signal);
  }

  close(): Promise<string[]> {
    const problems = [...this.#unregister(this.#quiet), ...this.#unregister(this.#session)];
    this.#quiet = undefined;
    this.#session = undefined;
    return Promise.resolve(problems);
  }
}

export function makeNotifier(kind: Notification, ctx: NotifierContext): Notifier {
  switch (kind) {
    case "poll":
      return new PollNotifier(ctx);
    case "watch":
      return new WatchNotifier(ctx);
    case "evtchn":
      return new SubscribeNotifier(ctx);
    case "virq":
      return new HvNotifyNotifier(ctx);
  }
}

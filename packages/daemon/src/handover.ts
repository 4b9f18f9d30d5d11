// Handing a domain over to libxl between our cycles.
//
// A SuspendSession takes the domain's libxl-compatible suspend lock in open() and, on the
// `evtchn` notification path, subscribes a port with XEN_DOMCTL_subscribe, and keeps both until
// close(). That is right for one command, wrong for a daemon that keeps sessions warm: while the
// lock is held, `xl save`/`xl migrate`/`xl remus` of a guest with a suspend channel fail at once
// (libxenguest's lock is a non-blocking F_SETLK), and while the subscription is in place Xen sends
// the guest's suspend to our port instead of raising VIRQ_DOM_EXC, so xenstored never fires
// `@releaseDomain` and `xl save` of a stock guest waits for its 60 s timeout.
//
// HandoverBinding wraps the real binding for the daemon's sessions. The lock a session takes is a
// stand-in; the real one is held, and the subscription applied, only between activate(domid) and
// park(domid) or deactivate(domid), which the daemon calls around each piece of work (one suspend,
// one checkpoint cycle). Between cycles the suspend lock is free and VIRQ_DOM_EXC is back.
//
// Freeing the suspend lock between cycles is not enough: an xl that reaches it while a cycle runs
// still fails. What makes the handover safe is libxl's own per-domain lock, the userdata lock
// (flock, libxl__lock_domain_userdata), which xl save, migrate and remus take, waiting, to read the
// domain's configuration *before* they try the suspend lock. activate() takes it first (without
// waiting: EAGAIN, skip the cycle, when libxl has it); park() keeps it across a loop's gaps, so an
// xl that starts during a loop waits in that read instead of racing us to the suspend lock; and
// toolstackWaiting() sees it queued there (/proc/locks), so that the daemon lets go of both locks
// and stays off the domain until xl is done.
import type { DomainInfo, DomctlLayout, EvtchnHandle, OpenEvtchnOptions, SuspendLock, ToolstackLock, XenBinding, XenStats } from "@fastsuspend/xen";
import { errorText } from "@fastsuspend/coordinator";
import { isXenError, type ShutdownReasonName } from "@fastsuspend/xen";

interface DomainGate {
  /** libxl's userdata lock: from activate() to deactivate(), kept by park(). */
  toolstack: ToolstackLock | undefined;
  /** The real suspend lock while active. */
  real: SuspendLock | undefined;
  /** The port the session subscribed (0/undefined: none). */
  port: number | undefined;
  /** The subscription is applied in Xen right now. */
  subscribed: boolean;
}

export class HandoverBinding implements XenBinding {
  readonly #inner: XenBinding;
  readonly #gates = new Map<number, DomainGate>();
  /** Subscribe/unsubscribe domctls issued on activation/deactivation (metrics, tests). */
  toggles = 0;

  constructor(inner: XenBinding) {
    this.#inner = inner;
  }

  get kind(): XenBinding["kind"] {
    return this.#inner.kind;
  }
  get domctlLayout(): DomctlLayout {
    return this.#inner.domctlLayout;
  }
  get inner(): XenBinding {
    return this.#inner;
  }

  #gate(domid: number): DomainGate {
    let g = this.#gates.get(domid);
    if (g === undefined) {
      g = { toolstack: undefined, real: undefined, port: undefined, subscribed: false };
      this.#gates.set(domid, g);
    }
    return g;
  }

  isActive(domid: number): boolean {
    return this.#gates.get(domid)?.real !== undefined;
  }

  /**
   * Takes libxl's userdata lock (unless parked with it), then the real suspend lock (XenError EAGAIN
   * if libxl has either) and, unless told not to (a resume needs no notification), re-applies the
   * session's subscription. On failure nothing is left held.
   */
  activate(domid: number, opts: { subscribe?: boolean } = {}): void {
    const g = this.#gate(domid);
    try {
      g.toolstack ??= this.#inner.lockToolstack(domid);
      g.real ??= this.#inner.lockSuspend(domid);
      if ((opts.subscribe ?? true) && g.port !== undefined && !g.subscribed) {
        this.#inner.subscribeForSuspend(domid, g.port);
        g.subscribed = true;
        this.toggles++;
      }
    } catch (err) {
      this.deactivate(domid);
      throw err;
    }
  }

  /**
   * Drops the subscription now, lock kept: called as soon as the guest is confirmed suspended, so
   * that a suspend request another tool queued meanwhile (xl save writing control/shutdown while
   * our cycle ran) is reported the normal way (VIRQ_DOM_EXC, @releaseDomain) when the guest acts on
   * it right after our resume. Never throws.
   */
  dropSubscription(domid: number): string[] {
    const g = this.#gates.get(domid);
    if (g === undefined || !g.subscribed) return [];
    g.subscribed = false;
    try {
      this.#inner.subscribeForSuspend(domid, 0);
      this.toggles++;
      return [];
    } catch (err) {
      return isXenError(err, "ESRCH") ? [] : [`unsubscribe dom${domid}: ${errorText(err)}`];
    }
  }

  /**
   * Between two cycles of a loop: drops the subscription and the suspend lock, keeps libxl's
   * userdata lock (an xl that starts now queues on it; see toolstackWaiting). Never throws.
   */
  park(domid: number): string[] {
    const g = this.#gates.get(domid);
    if (g?.real === undefined) return [];
    const problems = this.dropSubscription(domid);
    try {
      g.real.release();
    } catch (err) {
      problems.push(`release suspend lock dom${domid}: ${errorText(err)}`);
    }
    g.real = undefined;
    return problems;
  }

  /** Drops the subscription (VIRQ_DOM_EXC back to xenstored) and both locks. Never throws. */
  deactivate(domid: number): string[] {
    const g = this.#gates.get(domid);
    if (g === undefined) return [];
    const problems = this.park(domid);
    try {
      g.toolstack?.release();
    } catch (err) {
      problems.push(`release userdata lock dom${domid}: ${errorText(err)}`);
    }
    g.toolstack = undefined;
    if (g.port === undefined) this.#gates.delete(domid);
    return problems;
  }

  /** Holding libxl's userdata lock of the domain (active or parked). */
  holdsToolstack(domid: number): boolean {
    return this.#gates.get(domid)?.toolstack !== undefined;
  }

  /**
   * Another process (libxl: xl save, migrate, remus, destroy...) is queued on the userdata lock we
   * hold. A failure to tell counts as yes: better a skipped cycle than a failed xl.
   */
  toolstackWaiting(domid: number): boolean {
    const lock = this.#gates.get(domid)?.toolstack;
    if (lock === undefined) return false;
    try {
      return lock.waiting();
    } catch {
      return true;
    }
  }

  /**
   * Whether another process holds libxl's userdata lock of the domain right now (taken and let go
   * at once to find out; a libxl that asks meanwhile waits microseconds). False while we hold it.
   */
  toolstackBusy(domid: number): boolean {
    if (this.holdsToolstack(domid)) return false;
    try {
      this.#inner.lockToolstack(domid).release();
      return false;
    } catch (err) {
      if (isXenError(err, "EAGAIN")) return true;
      throw err;
    }
  }

  /** Whether the subscription is applied in Xen (tests). */
  isSubscribed(domid: number): boolean {
    return this.#gates.get(domid)?.subscribed === true;
  }

  /** Forget a domain (its session closed). */
  forget(domid: number): string[] {
    const problems = this.deactivate(domid);
    this.#gates.delete(domid);
    return problems;
  }

  lockSuspend(domid: number): SuspendLock {
    // Outside an activation (e.g. detect() for status) it is the real lock, taken and released at once.
    if (!this.isActive(domid)) return this.#inner.lockSuspend(domid);
    return standIn(domid, this.#gates.get(domid)?.real?.path ?? "");
  }

  lockToolstack(domid: number): ToolstackLock {
    const held = this.#gates.get(domid)?.toolstack;
    if (held === undefined) return this.#inner.lockToolstack(domid);
    return standIn(domid, held.path);
  }

  subscribeForSuspend(domid: number, port: number): void {
    const g = this.#gate(domid);
    if (port === 0) {
      g.port = undefined;
      g.subscribed = false;
      this.#inner.subscribeForSuspend(domid, 0);
      return;
    }
    g.port = port;
    if (g.real !== undefined) {
      this.#inner.subscribeForSuspend(domid, port);
      g.subscribed = true;
    }
  }

  openEvtchn(opts?: OpenEvtchnOptions): EvtchnHandle {
    return this.#inner.openEvtchn(opts);
  }
  getInfo(domid: number): DomainInfo {
    return this.#inner.getInfo(domid);
  }
  listDomains(): DomainInfo[] {
    return this.#inner.listDomains();
  }
  pause(domid: number): void {
    this.#inner.pause(domid);
  }
  unpause(domid: number): void {
    this.#inner.unpause(domid);
  }
  shutdown(domid: number, reason: ShutdownReasonName | number): void {
    this.#inner.shutdown(domid, reason);
  }
  resume(domid: number, fast: boolean): void {
    this.#inner.resume(domid, fast);
  }
  resumeAsync(domid: number, fast: boolean): Promise<void> {
    return this.#inner.resumeAsync(domid, fast);
  }
  allocUnbound(domid: number, remoteDomid: number): number {
    return this.#inner.allocUnbound(domid, remoteDomid);
  }
  domctl(cmd: number, domid: number, payload: Buffer): Buffer {
    return this.#inner.domctl(cmd, domid, payload);
  }
  stats(): XenStats {
    return this.#inner.stats();
  }
  close(): void {
    for (const d of [...this.#gates.keys()]) this.forget(d);
    this.#inner.close();
  }
}

/** A lock the gate holds for real, handed to a session: releasing it is a no-op. */
function standIn(domid: number, path: string): ToolstackLock {
  let released = false;
  return {
    domid,
    path,
    get released() {
      return released;
    },
    waiting: () => false,
    release: () => {
      released = true;
    },
  };
}

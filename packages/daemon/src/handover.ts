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
// stand-in; the real lock is held, and the subscription applied, only between activate(domid) and
// deactivate(domid), which the daemon calls around each piece of work (one suspend, one checkpoint
// cycle). Between cycles the domain is libxl's: the real lock is free and VIRQ_DOM_EXC is back.
// activate() fails with EAGAIN when another process holds the lock: the daemon skips that cycle.
import type { DomainInfo, DomctlLayout, EvtchnHandle, OpenEvtchnOptions, SuspendLock, XenBinding, XenStats } from "@fastsuspend/xen";
import { isXenError, type ShutdownReasonName } from "@fastsuspend/xen";

interface DomainGate {
  /** The real lock while active. */
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
      g = { real: undefined, port: undefined, subscribed: false };
      this.#gates.set(domid, g);
    }
    return g;
  }

  isActive(domid: number): boolean {
    return this.#gates.get(domid)?.real !== undefined;
  }

  /**
   * Takes the real lock (XenError EAGAIN if libxl has it) and, unless told not to (a resume needs
   * no notification), re-applies the session's subscription.
   */
  activate(domid: number, opts: { subscribe?: boolean } = {}): void {
    const g = this.#gate(domid);
    if (g.real === undefined) g.real = this.#inner.lockSuspend(domid);
    if ((opts.subscribe ?? true) && g.port !== undefined && !g.subscribed) {
      try {
        this.#inner.subscribeForSuspend(domid, g.port);
        g.subscribed = true;
        this.toggles++;
      } catch (err) {
        g.real.release();
        g.real = undefined;
        throw err;
      }
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
      return isXenError(err, "ESRCH") ? [] : [`unsubscribe dom${domid}: ${err instanceof Error ? err.message : String(err)}`];
    }
  }

  /** Drops the subscription (VIRQ_DOM_EXC back to xenstored) and the real lock. Never throws. */
  deactivate(domid: number): string[] {
    const g = this.#gates.get(domid);
    if (g?.real === undefined) return [];
    const problems = this.dropSubscription(domid);
    try {
      g.real.release();
    } catch (err) {
      problems.push(`release lock dom${domid}: ${err instanceof Error ? err.message : String(err)}`);
    }
    g.real = undefined;
    if (g.port === undefined) this.#gates.delete(domid);
    return problems;
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
    const path = this.#gates.get(domid)?.real?.path ?? "";
    let released = false;
    return {
      domid,
      path,
      get released() {
        return released;
      },
      release: () => {
        released = true;
      },
    };
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

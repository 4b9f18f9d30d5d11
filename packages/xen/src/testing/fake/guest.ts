// Test hooks for one fake guest: what the guest kernel would do (suspend, crash, allocate and
// signal its own channels) and how it reacts to a suspend request or a notified channel.
import { SHUTDOWN_REASONS } from "../../constants";
import type { DomainInfo } from "../../interface";
import type { FakeDomain, FakeHypervisor, PortSink } from "./model";

export interface GuestBehaviour {
  /** React to requestSuspend() (xenstore control/shutdown=suspend). Default true. */
  respondsToSuspendRequest: boolean;
  /** How long the guest takes to notice the request and suspend (lab: ~33-37 ms). Default 1. */
  suspendDelayMs: number;
}

export class FakeGuest implements PortSink {
  readonly domid: number;
  readonly behaviour: GuestBehaviour;
  suspendRequests = 0;
  suspends = 0;
  resumes = 0;
  readonly #hv: FakeHypervisor;
  readonly #handlers = new Map<number, (port: number) => void>();
  readonly #received: number[] = [];
  readonly #resumeHooks = new Set<(fast: boolean) => void>();

  constructor(hv: FakeHypervisor, domid: number, behaviour: Partial<GuestBehaviour> = {}) {
    this.#hv = hv;
    this.domid = domid;
    this.behaviour = { respondsToSuspendRequest: true, suspendDelayMs: 1, ...behaviour };
  }

  get #dom(): FakeDomain {
    return this.#hv.domain(this.domid, "fake guest");
  }

  get info(): DomainInfo {
    return this.#dom.info();
  }

  /** Ports that fired on the guest side, in order. */
  get received(): readonly number[] {
    return this.#received;
  }

  // PortSink: the guest's upcall. It handles the port, then unmasks it itself.
  deliver(port: number): void {
    this.#received.push(port);
    setImmediate(() => {
      this.#hv.unmask(this.domid, port);
      this.#handlers.get(port)?.(port);
    });
  }

  /** EVTCHNOP_alloc_unbound from inside the guest (e.g. its suspend channel for dom0). */
  allocUnbound(remoteDom: number): number {
    return this.#hv.allocUnbound(this.domid, remoteDom, this, "EVTCHNOP_alloc_unbound", `remote_dom=${remoteDom}`);
  }

  notify(port: number): void {
    this.#hv.send(this.domid, port, "EVTCHNOP_send", `port=${port}`);
  }

  closePort(port: number): void {
    this.#hv.close(this.domid, port);
  }

  onEvent(port: number, handler: (port: number) => void): void {
    this.#handlers.set(port, handler);
  }

  /** XenLinux 2.6.18 style: the guest suspends when dom0 signals `port`. */
  suspendOnNotify(port: number, delayMs = 0): void {
    this.onEvent(port, () => {
      setTimeout(() => {
        this.suspend();
      }, delayMs);
    });
  }

  /** The toolstack wrote control/shutdown=suspend: a responsive guest suspends after a delay. */
  requestSuspend(): Promise<void> {
    this.suspendRequests++;
    if (this.behaviour.respondsToSuspendRequest) {
      setTimeout(() => {
        const d = this.#hv.domains.get(this.domid);
        if (d !== undefined && !d.shutdown && !d.dying) this.suspend();
      }, this.behaviour.suspendDelayMs);
    }
    return Promise.resolve();
  }

  /** SCHEDOP_shutdown(SHUTDOWN_suspend) from the guest. */
  suspend(): void {
    this.suspends++;
    this.#hv.shutdownDomain(this.#dom, SHUTDOWN_REASONS.suspend);
  }

  crash(): void {
    this.#hv.shutdownDomain(this.#dom, SHUTDOWN_REASONS.crash);
  }

  poweroff(): void {
    this.#hv.shutdownDomain(this.#dom, SHUTDOWN_REASONS.poweroff);
  }

  reboot(): void {
    this.#hv.shutdownDomain(this.#dom, SHUTDOWN_REASONS.reboot);
  }

  /** xl destroy: dying, channels closed, gone. */
  destroy(): void {
    this.#hv.destroyDomain(this.domid);
  }

  onResume(hook: (fast: boolean) => void): () => void {
    this.#resumeHooks.add(hook);
    return () => this.#resumeHooks.delete(hook);
  }

  /** Called by the fake binding after xc_domain_resume. */
  resumed(fast: boolean): void {
    this.resumes++;
    if (!fast) {
      // Non-cooperative resume: the guest comes back as if restored, its ports gone (they do not
      // survive). Xen's suspend subscription is *not* cleared: it now names a stale port.
      for (const port of [...this.#dom.channels.keys()]) this.#hv.close(this.domid, port);
      this.#handlers.clear();
    }
    for (const hook of this.#resumeHooks) hook(fast);
  }
}

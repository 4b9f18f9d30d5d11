// In-memory model of the parts of Xen this package touches: domains (shutdown/suspend, pause,
// dying), per-domain event-channel tables (unbound/interdomain/virq, pending + masked bits),
// XEN_DOMCTL_subscribe and the global VIRQ_DOM_EXC. Semantics follow xen/common/event_channel.c
// and domain.c (4.17) as summarised in docs: see the comments at each rule.
import { SHUTDOWN_REASONS, VIRQ_DOM_EXC, NR_VIRQS, shutdownReasonName } from "../../constants";
import { xenError } from "../../errors";
import type { DomainInfo } from "../../interface";

/** Whoever consumes deliveries on a port: a dom0 user handle, or a guest's handler. */
export interface PortSink {
  deliver(port: number): void;
}

export type ChannelState = "unbound" | "interdomain" | "virq";

export interface Channel {
  port: number;
  state: ChannelState;
  /** unbound: who may bind; interdomain: the peer. */
  remoteDom: number;
  remotePort: number;
  virq: number;
  pending: boolean;
  masked: boolean;
  sink: PortSink | undefined;
}

/** A stable, distinct handle per fake domid. */
export function fakeUuid(domid: number): string {
  return `00000000-0000-4000-8000-${domid.toString(16).padStart(12, "0")}`;
}

/** HVM_PARAM_CALLBACK_IRQ as Linux sets it: via type 2 (vector) in bits 56-63, vector 0xf3. */
export const HVM_CALLBACK_VECTOR_0XF3 = (2n << 56n) | 0xf3n;

export const MAX_PORTS = 4096; // 2-level ABI on 64-bit

export class FakeDomain {
  readonly domid: number;
  readonly hvm: boolean;
  readonly channels = new Map<number, Channel>();
  readonly virqs = new Map<number, number>(); // virq -> port
  shutdown = false;
  shutdownReason = 0;
  controllerPauses = 0;
  dying = false;
  /** XEN_DOMCTL_subscribe: the domain's own port signalled on suspend (0 = none). */
  suspendEvtchn = 0;
  nrPages: number;
  maxVcpuId: number;
  cpuTimeNs = 0;
  /** HVM_PARAM_CALLBACK_IRQ (HVM only): what a guest's PV drivers set, here a vector callback. */
  callbackIrq: bigint;

  constructor(domid: number, opts: { hvm?: boolean; pvDrivers?: boolean; nrPages?: number; vcpus?: number } = {}) {
    this.domid = domid;
    this.hvm = opts.hvm ?? false;
    this.callbackIrq = this.hvm && (opts.pvDrivers ?? true) ? HVM_CALLBACK_VECTOR_0XF3 : 0n;
    this.nrPages = opts.nrPages ?? 32768;
    this.maxVcpuId = (opts.vcpus ?? 1) - 1;
  }

  get paused(): boolean {
    return this.controllerPauses > 0;
  }

  info(): DomainInfo {
    const reason = this.shutdown ? this.shutdownReason : null;
    return {
      domid: this.domid,
      shutdown: this.shutdown,
      shutdownReason: reason,
      shutdownReasonName: reason === null ? null : shutdownReasonName(reason),
      paused: this.paused,
      dying: this.dying,
      running: false,
      blocked: !this.shutdown && !this.paused && !this.dying,
      hvm: this.hvm,
      xenstoreDomain: false,
      maxVcpuId: this.maxVcpuId,
      onlineVcpus: this.maxVcpuId + 1,
      nrPages: this.nrPages,
      maxPages: this.nrPages,
      cpuTimeNs: this.cpuTimeNs,
      ssidref: 0,
      uuid: fakeUuid(this.domid),
    };
  }
}

export class FakeHypervisor {
  readonly domains = new Map<number, FakeDomain>();
  /** Times VIRQ_DOM_EXC was raised (what makes xenstored fire @releaseDomain). */
  domExcRaised = 0;
  readonly domExcListeners = new Set<(count: number) => void>();
  /**
   * The hypervisor series (XEN_DOMCTL_suspend_notify), installed by a test world: its registrants
   * are notified first on a shutdown, and true holds back VIRQ_DOM_EXC (F_NO_DOM_EXC delivered).
   */
  notifyShutdown?: (d: FakeDomain, reason: number) => boolean;

  domain(domid: number, call: string, args = `dom=${domid}`): FakeDomain {
    const d = this.domains.get(domid);
    if (d === undefined) throw xenError(call, args, "ESRCH");
    return d;
  }

  // --- event channels (EVTCHNOP_*) -------------------------------------------------------------

  #allocPort(d: FakeDomain, call: string, args: string): number {
    for (let p = 1; p < MAX_PORTS; p++) if (!d.channels.has(p)) return p; // port 0 is reserved
    throw xenError(call, args, "ENOSPC");
  }

  allocUnbound(dom: number, remoteDom: number, sink: PortSink | undefined, call: string, args: string): number {
    const d = this.domain(dom, call, args);
    const port = this.#allocPort(d, call, args);
    d.channels.set(port, {
      port, state: "unbound", remoteDom, remotePort: 0, virq: -1, pending: false, masked: false, sink,
    });
    return port;
  }

  /**
   * EVTCHNOP_bind_interdomain: the remote port must be unbound and offered to `local`; EINVAL
   * otherwise (including port 0). Xen then sets the *local* port pending, in case the remote
   * end notified before the bind: binders see one event at once.
   */
  bindInterdomain(local: number, remoteDom: number, remotePort: number, sink: PortSink, call: string, args: string): number {
    const ld = this.domain(local, call, args);
    const rd = this.domain(remoteDom, call, args);
    const rc = rd.channels.get(remotePort);
    if (rc === undefined || rc.state !== "unbound" || rc.remoteDom !== local) throw xenError(call, args, "EINVAL");
    const port = this.#allocPort(ld, call, args);
    ld.channels.set(port, {
      port, state: "interdomain", remoteDom, remotePort, virq: -1, pending: false, masked: false, sink,
    });
    rc.state = "interdomain";
    rc.remoteDom = local;
    rc.remotePort = port;
    this.setPending(local, port);
    return port;
  }

  bindVirq(dom: number, virq: number, sink: PortSink, call: string, args: string): number {
    const d = this.domain(dom, call, args);
    if (virq >= NR_VIRQS) throw xenError(call, args, "EINVAL");
    if (d.virqs.has(virq)) throw xenError(call, args, "EEXIST");
    const port = this.#allocPort(d, call, args);
    d.channels.set(port, { port, state: "virq", remoteDom: dom, remotePort: 0, virq, pending: false, masked: false, sink });
    d.virqs.set(virq, port);
    return port;
  }

  /** EVTCHNOP_close: an interdomain peer falls back to unbound (offered to us again). */
  close(dom: number, port: number): void {
    const d = this.domains.get(dom);
    const c = d?.channels.get(port);
    if (d === undefined || c === undefined) return;
    d.channels.delete(port);
    if (c.state === "virq") d.virqs.delete(c.virq);
    if (c.state === "interdomain") {
      const peer = this.domains.get(c.remoteDom)?.channels.get(c.remotePort);
      if (peer !== undefined && peer.state === "interdomain") {
        peer.state = "unbound";
        peer.remotePort = 0;
      }
    }
  }

  /** EVTCHNOP_send from `dom`'s `port`: unbound drops silently, virq is EINVAL. */
  send(dom: number, port: number, call: string, args: string): void {
    const c = this.domain(dom, call, args).channels.get(port);
    if (c === undefined) throw xenError(call, args, "EINVAL");
    if (c.state === "unbound") return;
    if (c.state === "virq") throw xenError(call, args, "EINVAL");
    this.setPending(c.remoteDom, c.remotePort);
  }

  /** Coalescing: a pending port stays one event; a masked one waits for unmask. */
  setPending(dom: number, port: number): void {
    const c = this.domains.get(dom)?.channels.get(port);
    if (c === undefined || c.pending) return;
    c.pending = true;
    if (!c.masked) this.#deliver(c);
  }

  unmask(dom: number, port: number): void {
    const c = this.domains.get(dom)?.channels.get(port);
    if (c === undefined) return;
    c.masked = false;
    if (c.pending) this.#deliver(c);
  }

  #deliver(c: Channel): void {
    if (c.sink === undefined) return; // stays pending until someone binds a handler
    // Linux's evtchn driver masks the port and clears pending as it queues it to the reader.
    c.masked = true;
    c.pending = false;
    c.sink.deliver(c.port);
  }

  sendGlobalVirq(virq: number): void {
    if (virq === VIRQ_DOM_EXC) {
      this.domExcRaised++;
      for (const l of this.domExcListeners) l(this.domExcRaised);
    }
    for (const d of this.domains.values()) {
      const port = d.virqs.get(virq);
      if (port !== undefined) this.setPending(d.domid, port);
    }
  }

  // --- domains ---------------------------------------------------------------------------------

  /**
   * domain_shutdown + __domain_finalise_shutdown: on suspend with a subscribed port, Xen sends on
   * the domain's own port (reaching whoever bound its other end) *instead of* VIRQ_DOM_EXC; with
   * the hypervisor series, its registrants first, and a delivered F_NO_DOM_EXC one holds it back.
   */
  shutdownDomain(d: FakeDomain, reason: number): void {
    if (d.dying || d.shutdown) return;
    d.shutdown = true;
    d.shutdownReason = reason;
    const suppressDomExc = this.notifyShutdown?.(d, reason) ?? false;
    if (reason === SHUTDOWN_REASONS.suspend && d.suspendEvtchn !== 0) {
      const c = d.channels.get(d.suspendEvtchn);
      if (c?.state === "interdomain") this.setPending(c.remoteDom, c.remotePort);
    } else if (!suppressDomExc) {
      this.sendGlobalVirq(VIRQ_DOM_EXC);
    }
  }

  /** XEN_DOMCTL_resumedomain: clears the shutdown state; the subscription stays (sticky). */
  resumeDomain(d: FakeDomain): void {
    d.shutdown = false;
    d.shutdownReason = 0;
  }

  /** domain_kill then destroy: VIRQ_DOM_EXC at both, every channel closed. */
  destroyDomain(domid: number): void {
    const d = this.domains.get(domid);
    if (d === undefined || d.dying) return;
    d.dying = true;
    this.sendGlobalVirq(VIRQ_DOM_EXC);
    for (const port of [...d.channels.keys()]) this.close(domid, port);
    this.domains.delete(domid);
    this.sendGlobalVirq(VIRQ_DOM_EXC);
  }
}

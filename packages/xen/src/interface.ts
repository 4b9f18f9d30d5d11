// The typed surface the coordinator depends on. Implemented by the native addon (real.ts) and by
// the in-memory fake (fake/); the contract suite (testing/contract.ts) holds both to it.
import type { ShutdownReasonName } from "./constants";

export interface DomainInfo {
  domid: number;
  shutdown: boolean;
  /** SHUTDOWN_* code, null unless shutdown. */
  shutdownReason: number | null;
  shutdownReasonName: ShutdownReasonName | null;
  paused: boolean;
  dying: boolean;
  running: boolean;
  blocked: boolean;
  hvm: boolean;
  xenstoreDomain: boolean;
  /** -1 when the domain has no vCPUs. */
  maxVcpuId: number;
  onlineVcpus: number;
  nrPages: number;
  maxPages: number;
  /** Total vCPU time in ns (exact below 2^53 ns, about 104 days). */
  cpuTimeNs: number;
  ssidref: number;
  /** The domain handle as libxl prints it (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx). */
  uuid: string;
}

export interface WaitOptions {
  /** Reject with XenError code ETIMEDOUT after this long. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface OpenEvtchnOptions {
  /**
   * Watch the fd and emit "event" (default true). With false, read ports yourself with pending();
   * the two must not be mixed on one handle (pending() would steal the poller's events).
   */
  poll?: boolean;
}

/**
 * One event-channel handle (one open of /dev/xen/evtchn). JS-thread only. Ports delivered are left
 * masked: call unmask(port) when you want the next one.
 */
export interface EvtchnHandle {
  readonly closed: boolean;
  fd(): number;
  /** Bind a local port to `remotePort` of `remoteDomid` (which must be unbound, for us). */
  bindInterdomain(remoteDomid: number, remotePort: number): number;
  /** Allocate a local port that `remoteDomid` may bind to. */
  bindUnboundPort(remoteDomid: number): number;
  bindVirq(virq: number): number;
  notify(port: number): void;
  unbind(port: number): void;
  unmask(port: number): void;
  /** Next pending port or -1 (non-blocking: polls the fd first). Only with {poll: false}. */
  pending(): number;
  /** Ports bound through this handle. */
  boundPorts(): number[];
  /**
   * Resolves on the next event on `port`. An event that arrived while nobody waited on its port
   * is latched (like Xen's pending bit, coalesced) and satisfies the next wait at once.
   */
  wait(port: number, opts?: WaitOptions): Promise<void>;
  /** Drop a latched event; true if there was one. */
  clearLatched(port: number): boolean;
  on(event: "event", listener: (port: number) => void): this;
  on(event: "error", listener: (err: Error) => void): this;
  off(event: "event", listener: (port: number) => void): this;
  off(event: "error", listener: (err: Error) => void): this;
  /** Whether the poller keeps the process alive (default yes, like a socket). */
  ref(): void;
  unref(): void;
  /** Unbinds everything (the driver does), stops polling, rejects waiters. Idempotent. */
  close(): void;
}

export interface DomctlLayout {
  /** XEN_DOMCTL_INTERFACE_VERSION the raw call fills in. */
  interfaceVersion: number;
  /** sizeof(struct xen_domctl). */
  size: number;
  /** offsetof(struct xen_domctl, u). */
  payloadOffset: number;
  /** sizeof(((struct xen_domctl *)0)->u). */
  payloadSize: number;
}

/**
 * A held libxl-compatible suspend lock (`/var/run/xen/suspend-evtchn-<domid>.lock`, a one-byte
 * fcntl write lock, as libxenguest takes it). fcntl locks belong to the process: another process
 * (libxl, xl save) gets EAGAIN, and the binding refuses a second lock of the same domid in this
 * process (EBUSY), since closing either fd would silently drop both.
 */
export interface SuspendLock {
  readonly domid: number;
  readonly path: string;
  readonly released: boolean;
  /** Unlinks the file and drops the lock. Idempotent. */
  release(): void;
}

/**
 * A held libxl userdata lock (`/var/lib/xen/userdata-l.<domid>.<uuid>.domain-userdata-lock`, a
 * flock as libxl__lock_domain_userdata takes it): the per-domain lock libxl holds while it reads or
 * changes a domain's configuration. `xl save`, `xl migrate` and `xl remus` read the configuration
 * (and so wait for this lock, blocking) before they take the suspend lock (without waiting): a
 * process that holds it keeps them from reaching the suspend lock, and waiting() tells it that
 * one of them is queued.
 */
export interface ToolstackLock {
  readonly domid: number;
  readonly path: string;
  readonly released: boolean;
  /** Another process is blocked waiting for this lock (libxl wants the domain). */
  waiting(): boolean;
  /** Unlinks the file and drops the lock, like libxl__unlock_file. Idempotent. */
  release(): void;
}

export interface XenStats {
  evtchnHandles: number;
  boundPorts: number;
  controlHandles: number;
}

export interface XenBinding {
  readonly kind: "native" | "fake";
  readonly domctlLayout: DomctlLayout;

  openEvtchn(opts?: OpenEvtchnOptions): EvtchnHandle;

  /** ESRCH if `domid` does not exist. */
  getInfo(domid: number): DomainInfo;
  listDomains(): DomainInfo[];
  pause(domid: number): void;
  unpause(domid: number): void;
  shutdown(domid: number, reason: ShutdownReasonName | number): void;
  /** xc_domain_resume; EINVAL unless the domain is shut down with reason suspend. Blocks ~ms. */
  resume(domid: number, fast: boolean): void;
  /** Same on the libuv thread pool. */
  resumeAsync(domid: number, fast: boolean): Promise<void>;
  /** xc_evtchn_alloc_unbound: a port in `domid`'s table that `remoteDomid` may bind. */
  allocUnbound(domid: number, remoteDomid: number): number;
  /** XEN_DOMCTL_subscribe: signal `domid`'s own `port` on suspend instead of VIRQ_DOM_EXC; 0 restores. */
  subscribeForSuspend(domid: number, port: number): void;
  /**
   * xc_hvm_param_get(HVM_PARAM_CALLBACK_IRQ): non-zero once an HVM or PVH guest's PV drivers are
   * up (Xen keeps it across save/restore and migration, unlike the guest's own xenstore nodes);
   * libxl asks a guest through control/shutdown only then. EINVAL for a PV domain.
   */
  hvmCallbackIrq(domid: number): bigint;
  /**
   * Raw domctl through libxencall: `payload` (<= domctlLayout.payloadSize bytes) is copied to the
   * start of xen_domctl.u; returns the whole union after the call.
   */
  domctl(cmd: number, domid: number, payload: Buffer): Buffer;

  /**
   * Takes `domid`'s suspend lock. XenError EAGAIN: another process (libxl) holds it; EBUSY: this
   * process already holds it.
   */
  lockSuspend(domid: number): SuspendLock;

  /**
   * Takes libxl's userdata lock of `domid` without waiting. XenError EAGAIN: another process
   * (libxl) holds it; EBUSY: this process already holds it; ESRCH: no such domain (the file name
   * carries the domain's uuid).
   */
  lockToolstack(domid: number): ToolstackLock;

  /** Open handles and bound ports (for leak checks). The native one counts process-wide. */
  stats(): XenStats;
  close(): void;
}

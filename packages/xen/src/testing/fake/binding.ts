// FakeXenBinding: XenBinding over the in-memory model, seen from one caller domain (dom0).
import { DOMCTL_LAYOUT_4_17, SHUTDOWN_REASONS, shutdownReasonCode, type ShutdownReasonName } from "../../constants";
import { XEN_DOMCTL_getdomaininfo, XEN_DOMCTL_pausedomain, XEN_DOMCTL_subscribe, XEN_DOMCTL_unpausedomain } from "../../constants";
import { xenError } from "../../errors";
import { EvtchnPoller } from "../../evtchn";
import { XEN_LIB_DIR, toolstackLockPath } from "../../constants";
import type { DomainInfo, DomctlLayout, EvtchnHandle, OpenEvtchnOptions, SuspendLock, ToolstackLock, XenBinding, XenStats } from "../../interface";
import { DomainLockTable, SuspendLockTable } from "../../suspend-lock";
import { FakeRawEvtchn } from "./evtchn";
import type { FakeGuest } from "./guest";
import type { FakeHypervisor } from "./model";

/** Handles `domid` + the union (payload zero-padded to 128 bytes, mutated in place for OUT fields). */
export type FakeDomctlHandler = (domid: number, u: Buffer) => void;

export interface FakeBindingHost {
  readonly hv: FakeHypervisor;
  guestOrUndefined(domid: number): FakeGuest | undefined;
  domctlHandler(cmd: number): FakeDomctlHandler | undefined;
  readonly suspendLocks: FakeSuspendLocks;
}

/**
 * Lock files on a pretend filesystem, shared by every binding of one FakeXen. Each binding is a
 * process: a lock held through another binding (or by the simulated libxl) is EAGAIN.
 */
export class FakeSuspendLocks {
  readonly dir = "/var/run/xen";
  /** path -> holder ("libxl" for the test hook, else a binding's id). */
  readonly #files = new Map<string, string>();
  /** path -> processes queued for it (libxl blocked in flock). */
  readonly #waiters = new Map<string, number>();

  exists(path: string): boolean {
    return this.#files.has(path);
  }

  holder(path: string): string | undefined {
    return this.#files.get(path);
  }

  acquire(path: string, holder: string, call = "fcntl(F_SETLK)"): void {
    const current = this.#files.get(path);
    if (current !== undefined && current !== holder) {
      throw xenError(call, `path=${path}`, "EAGAIN", "held by another process");
    }
    this.#files.set(path, holder);
  }

  release(path: string): void {
    this.#files.delete(path);
  }

  /** Test hook: another process starts waiting for `path` (libxl's blocking flock); returns "give up". */
  addWaiter(path: string): () => void {
    this.#waiters.set(path, (this.#waiters.get(path) ?? 0) + 1);
    let gone = false;
    return () => {
      if (gone) return;
      gone = true;
      const n = (this.#waiters.get(path) ?? 1) - 1;
      if (n <= 0) this.#waiters.delete(path);
      else this.#waiters.set(path, n);
    };
  }

  waiting(path: string): boolean {
    return (this.#waiters.get(path) ?? 0) > 0;
  }

  /** Paths currently present (held). */
  paths(): string[] {
    return [...this.#files.keys()].sort();
  }
}

let nextBindingId = 1;

export class FakeXenBinding implements XenBinding {
  readonly kind = "fake" as const;
  readonly domctlLayout: DomctlLayout = { ...DOMCTL_LAYOUT_4_17 };
  readonly selfDomid: number;
  readonly #host: FakeBindingHost;
  readonly #handles = new Set<FakeRawEvtchn>();
  readonly #locks: SuspendLockTable;
  readonly #toolstackLocks: DomainLockTable;
  #closed = false;

  constructor(host: FakeBindingHost, selfDomid = 0) {
    this.#host = host;
    this.selfDomid = selfDomid;
    const me = `fake-binding-${nextBindingId++}`;
    const files = host.suspendLocks;
    this.#locks = new SuspendLockTable(files.dir, {
      acquire: (path) => {
        files.acquire(path, me);
        return 0;
      },
      release: (_fd, path) => {
        files.release(path);
      },
    });
    this.#toolstackLocks = new DomainLockTable("toolstack lock", (domid) => toolstackLockPath(domid, this.getInfo(domid).uuid, XEN_LIB_DIR), {
      acquire: (path) => {
        files.acquire(path, me, "flock(LOCK_EX|LOCK_NB)");
        return 0;
      },
      release: (_fd, path) => {
        files.release(path);
      },
      waiting: (_fd, path) => files.waiting(path),
    });
  }

  get #hv(): FakeHypervisor {
    return this.#host.hv;
  }

  #check(call: string): void {
    if (this.#closed) throw xenError(call, "handle closed", "EBADF");
  }

  openEvtchn(opts: OpenEvtchnOptions = {}): EvtchnHandle {
    this.#hv.domain(this.selfDomid, "xenevtchn_open", "");
    const raw = new FakeRawEvtchn(this.#hv, this.selfDomid, (h) => this.#handles.delete(h));
    this.#handles.add(raw);
    return new EvtchnPoller(raw, opts.poll ?? true);
  }

  getInfo(domid: number): DomainInfo {
    this.#check("xc_domain_getinfolist");
    return this.#hv.domain(domid, "xc_domain_getinfo").info();
  }

  listDomains(): DomainInfo[] {
    this.#check("xc_domain_getinfolist");
    return [...this.#hv.domains.values()].sort((a, b) => a.domid - b.domid).map((d) => d.info());
  }

  pause(domid: number): void {
    this.#check("xc_domain_pause");
    const d = this.#hv.domain(domid, "xc_domain_pause");
    if (domid === this.selfDomid) throw xenError("xc_domain_pause", `dom=${domid}`, "EINVAL");
    if (d.controllerPauses >= 255) throw xenError("xc_domain_pause", `dom=${domid}`, "EUSERS");
    d.controllerPauses++;
  }

  unpause(domid: number): void {
    this.#check("xc_domain_unpause");
    const d = this.#hv.domain(domid, "xc_domain_unpause");
    if (d.controllerPauses === 0) throw xenError("xc_domain_unpause", `dom=${domid}`, "EINVAL");
    d.controllerPauses--;
  }

  shutdown(domid: number, reason: ShutdownReasonName | number): void {
    const code = shutdownReasonCode(reason);
    const args = `dom=${domid}, reason=${code}`;
    this.#check("xc_domain_shutdown");
    const d = this.#hv.domain(domid, "xc_domain_shutdown", args);
    if (code > SHUTDOWN_REASONS.soft_reset) throw xenError("xc_domain_shutdown", args, "EINVAL");
    this.#hv.shutdownDomain(d, code);
  }

  resume(domid: number, fast: boolean): void {
    const args = `dom=${domid}, fast=${fast ? 1 : 0}`;
    this.#check("xc_domain_resume");
    const d = this.#hv.domain(domid, "xc_domain_resume", args);
    if (!d.shutdown || d.shutdownReason !== SHUTDOWN_REASONS.suspend) {
      throw xenError("xc_domain_resume", args, "EINVAL", `xc: error: Dom ${domid} not suspended: (shutdown ${d.shutdown ? 1 : 0}, reason ${d.shutdownReason})`);
    }
    this.#hv.resumeDomain(d);
    this.#host.guestOrUndefined(domid)?.resumed(fast);
  }

  resumeAsync(domid: number, fast: boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      setImmediate(() => {
        try {
          this.resume(domid, fast);
          resolve();
        } catch (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      });
    });
  }

  allocUnbound(domid: number, remoteDomid: number): number {
    const call = "xc_evtchn_alloc_unbound";
    this.#check(call);
    return this.#hv.allocUnbound(domid, remoteDomid, this.#host.guestOrUndefined(domid), call, `dom=${domid}, remote_dom=${remoteDomid}`);
  }

  subscribeForSuspend(domid: number, port: number): void {
    const call = "xc_domain_subscribe_for_suspend";
    this.#check(call);
    this.#hv.domain(domid, call, `dom=${domid}, port=${port}`).suspendEvtchn = port;
  }

  hvmCallbackIrq(domid: number): bigint {
    const call = "xc_hvm_param_get";
    const args = `dom=${domid}, param=HVM_PARAM_CALLBACK_IRQ`;
    this.#check(call);
    const d = this.#hv.domain(domid, call, args);
    if (!d.hvm) throw xenError(call, args, "EINVAL");
    return d.callbackIrq;
  }

  domctl(cmd: number, domid: number, payload: Buffer): Buffer {
    const call = "xencall1(domctl)";
    const args = `cmd=${cmd}, dom=${domid}`;
    this.#check(call);
    const size = this.domctlLayout.payloadSize;
    if (payload.length > size) {
      throw new RangeError(`domctl payload is ${payload.length} bytes; the union holds ${size}`);
    }
    const u = Buffer.alloc(size);
    payload.copy(u);
    const custom = this.#host.domctlHandler(cmd);
    if (custom !== undefined) {
      custom(domid, u);
      return u;
    }
    switch (cmd) {
      case XEN_DOMCTL_getdomaininfo: {
        // 4.17: the first domain with id >= the asked one.
        const d = [...this.#hv.domains.values()].sort((a, b) => a.domid - b.domid).find((x) => x.domid >= domid);
        if (d === undefined) throw xenError(call, args, "ESRCH");
        writeGetdomaininfo(u, d.info());
        return u;
      }
      case XEN_DOMCTL_pausedomain:
        this.#hv.domain(domid, call, args);
        this.pause(domid);
        return u;
      case XEN_DOMCTL_unpausedomain:
        this.#hv.domain(domid, call, args);
        this.unpause(domid);
        return u;
      case XEN_DOMCTL_subscribe:
        this.#hv.domain(domid, call, args).suspendEvtchn = u.readUInt32LE(0);
        return u;
      default:
        this.#hv.domain(domid, call, args);
        throw xenError(call, args, "ENOSYS");
    }
  }

  lockSuspend(domid: number): SuspendLock {
    this.#check("suspend lock");
    return this.#locks.lock(domid);
  }

  lockToolstack(domid: number): ToolstackLock {
    this.#check("toolstack lock");
    return this.#toolstackLocks.lock(domid);
  }

  /** Domids whose toolstack (libxl userdata) lock this binding holds. */
  heldToolstackLocks(): number[] {
    return this.#toolstackLocks.held();
  }

  /** Domids whose suspend lock this binding holds. */
  heldSuspendLocks(): number[] {
    return this.#locks.held();
  }

  stats(): XenStats {
    let boundPorts = 0;
    for (const h of this.#handles) boundPorts += h.portCount;
    return { evtchnHandles: this.#handles.size, boundPorts, controlHandles: this.#closed ? 0 : 1 };
  }

  /** Also releases the suspend locks taken through this binding. */
  close(): void {
    this.#locks.releaseAll();
    this.#toolstackLocks.releaseAll();
    this.#closed = true;
  }
}

/** struct xen_domctl_getdomaininfo (4.17) fields up to ssidref. */
export function writeGetdomaininfo(u: Buffer, info: DomainInfo): void {
  let flags = 0;
  if (info.dying) flags |= 1 << 0;
  if (info.hvm) flags |= 1 << 1;
  if (info.shutdown) flags |= 1 << 2;
  if (info.paused) flags |= 1 << 3;
  if (info.blocked) flags |= 1 << 4;
  if (info.running) flags |= 1 << 5;
  if (info.shutdownReason !== null) flags |= (info.shutdownReason & 0xff) << 16;
  u.writeUInt16LE(info.domid, 0);
  u.writeUInt32LE(flags >>> 0, 4);
  u.writeBigUInt64LE(BigInt(info.nrPages), 8);
  u.writeBigUInt64LE(BigInt(info.maxPages), 16);
  u.writeBigUInt64LE(BigInt(info.cpuTimeNs), 56);
  u.writeUInt32LE(info.onlineVcpus, 64);
  u.writeUInt32LE(info.maxVcpuId < 0 ? 0xffffffff : info.maxVcpuId, 68);
  u.writeUInt32LE(info.ssidref, 72);
}

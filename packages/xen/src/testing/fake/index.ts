// FakeXen: one in-memory hypervisor with dom0 and test-created guests; binding() gives the
// XenBinding a dom0 process would see.
import { XEN_LIB_DIR, suspendLockPath, toolstackLockPath, VIRQ_DOM_EXC } from "../../constants";
import { FakeSuspendLocks, FakeXenBinding, type FakeBindingHost, type FakeDomctlHandler } from "./binding";
import { FakeGuest, type GuestBehaviour } from "./guest";
import { FakeDomain, FakeHypervisor } from "./model";

export { FakeSuspendLocks, FakeXenBinding, writeGetdomaininfo, type FakeDomctlHandler } from "./binding";
export { FakeGuest, type GuestBehaviour } from "./guest";
export { FakeHypervisor, FakeDomain, type Channel, type ChannelState } from "./model";

export interface FakeXenOptions {
  /**
   * Model a dom0 xenstored holding VIRQ_DOM_EXC (default true, as in the lab): then a dom0
   * process binding VIRQ_DOM_EXC itself gets EEXIST, as on a real dom0.
   */
  xenstoredBindsDomExc?: boolean;
}

export interface CreateGuestOptions extends Partial<GuestBehaviour> {
  domid?: number;
  hvm?: boolean;
  /** HVM only: whether its PV drivers are up (HVM_PARAM_CALLBACK_IRQ set; default true, as on PVH). */
  pvDrivers?: boolean;
  nrPages?: number;
  vcpus?: number;
}

export class FakeXen implements FakeBindingHost {
  readonly hv = new FakeHypervisor();
  readonly suspendLocks = new FakeSuspendLocks();
  readonly #guests = new Map<number, FakeGuest>();
  readonly #domctls = new Map<number, FakeDomctlHandler>();
  #nextDomid = 1;

  constructor(opts: FakeXenOptions = {}) {
    this.hv.domains.set(0, new FakeDomain(0, { vcpus: 2, nrPages: 131072 }));
    if (opts.xenstoredBindsDomExc ?? true) {
      this.hv.bindVirq(0, VIRQ_DOM_EXC, { deliver: (port) => { this.hv.unmask(0, port); } }, "xenstored", "");
    }
  }

  /** Times VIRQ_DOM_EXC fired (each one is an @releaseDomain from xenstored). */
  get domExcRaised(): number {
    return this.hv.domExcRaised;
  }

  createGuest(opts: CreateGuestOptions = {}): FakeGuest {
    const domid = opts.domid ?? this.#nextDomid;
    if (this.hv.domains.has(domid)) throw new Error(`fake: domain ${domid} exists`);
    this.#nextDomid = Math.max(this.#nextDomid, domid + 1);
    this.hv.domains.set(domid, new FakeDomain(domid, opts));
    const guest = new FakeGuest(this.hv, domid, opts);
    this.#guests.set(domid, guest);
    return guest;
  }

  guest(domid: number): FakeGuest {
    const g = this.#guests.get(domid);
    if (g === undefined) throw new Error(`fake: no guest ${domid}`);
    return g;
  }

  guestOrUndefined(domid: number): FakeGuest | undefined {
    return this.#guests.get(domid);
  }

  destroyDomain(domid: number): void {
    this.hv.destroyDomain(domid);
    this.#guests.delete(domid);
  }

  /** Model a new domctl (e.g. the hypervisor patch's): the handler sees the 128-byte union. */
  registerDomctl(cmd: number, handler: FakeDomctlHandler): void {
    this.#domctls.set(cmd, handler);
  }

  domctlHandler(cmd: number): FakeDomctlHandler | undefined {
    return this.#domctls.get(cmd);
  }

  /**
   * Test hook: another process (libxl, `xl save`) takes `domid`'s suspend lock. Returns the
   * function that releases it (unlinking the file, as libxenguest does).
   */
  holdSuspendLockElsewhere(domid: number, holder = "libxl"): () => void {
    const path = suspendLockPath(domid, this.suspendLocks.dir);
    this.suspendLocks.acquire(path, holder);
    return () => {
      if (this.suspendLocks.holder(path) === holder) this.suspendLocks.release(path);
    };
  }

  /**
   * Test hook: another process (libxl) takes `domid`'s userdata lock (the configuration read of
   * `xl save`). Returns the function that releases it.
   */
  holdToolstackLockElsewhere(domid: number, holder = "libxl"): () => void {
    const path = this.toolstackLockPath(domid);
    this.suspendLocks.acquire(path, holder, "flock(LOCK_EX|LOCK_NB)");
    return () => {
      if (this.suspendLocks.holder(path) === holder) this.suspendLocks.release(path);
    };
  }

  /** Test hook: another process blocks waiting for `domid`'s userdata lock. Returns "gives up". */
  waitForToolstackLock(domid: number): () => void {
    return this.suspendLocks.addWaiter(this.toolstackLockPath(domid));
  }

  toolstackLockPath(domid: number): string {
    return toolstackLockPath(domid, this.hv.domain(domid, "toolstack lock").info().uuid, XEN_LIB_DIR);
  }

  /** Whether `domid`'s lock file exists (someone holds it). */
  suspendLockExists(domid: number): boolean {
    return this.suspendLocks.exists(suspendLockPath(domid, this.suspendLocks.dir));
  }

  /** The XenBinding a process in `selfDomid` (dom0) sees. */
  binding(selfDomid = 0): FakeXenBinding {
    return new FakeXenBinding(this, selfDomid);
  }
}

// A fake Xen host for unit tests: FakeXen (hypervisor + guests) wired to a FakeXenstored, so that
// what the coordinator does has the effect a real guest would give it:
//  - writing control/shutdown=suspend makes a responsive guest ack (clear it) and suspend;
//  - notifying a guest's advertised suspend channel makes it suspend;
//  - VIRQ_DOM_EXC (raised by Xen on shutdown/destroy unless a subscription replaces it) makes
//    xenstored fire @releaseDomain (once per domain until XS_RESUME, like cxenstored);
//  - optionally, the hypervisor series' XEN_DOMCTL_suspend_notify.
import { xenError } from "@fastsuspend/xen";
import { FakeXen, type FakeGuest, type FakeXenBinding } from "@fastsuspend/xen/testing";
import { XenstoreClient } from "@fastsuspend/xenstore";
import { FakeXenstored } from "@fastsuspend/xenstore/testing";

import { HV_NOTIFY_EV, HV_NOTIFY_F_NO_DOM_EXC, HV_NOTIFY_OFF_COOKIE, HV_NOTIFY_OP, XEN_DOMCTL_suspend_notify } from "../hv-notify";
import { controlShutdownKey, featureSuspendKey, suspendChannelKey, type XenstoreLike } from "../xs";

export type FakeChannelKind = "ok" | "empty" | "absent" | "garbage" | "stale";

export interface FakeGuestOptions {
  domid?: number;
  /** What the guest advertises in device/suspend/event-channel (default "empty", like Linux 6.1). */
  channel?: FakeChannelKind;
  /** Reacts to control/shutdown=suspend (default true). */
  answersXenstore?: boolean;
  /** Suspends when its channel is notified (default true). */
  answersChannel?: boolean;
  /** Time from noticing the request to suspending (default 2 ms). */
  suspendDelayMs?: number;
  /** Acks the xenstore request but never suspends (default false). */
  acksButHangs?: boolean;
  hvm?: boolean;
  featureSuspend?: boolean;
  /** HVM only: its PV drivers are up (HVM_PARAM_CALLBACK_IRQ; default: as featureSuspend). */
  pvDrivers?: boolean;
}

export interface FakeWorldGuest {
  domid: number;
  guest: FakeGuest;
  /** The guest's suspend channel port (when channel "ok"). */
  channelPort: number | undefined;
  opts: Required<Omit<FakeGuestOptions, "domid">>;
}

interface HvReg {
  target: number;
  registrant: number;
  port: number;
  mask: number;
  flags: number;
  cookie: bigint;
}

export class FakeWorld {
  readonly xen = new FakeXen();
  readonly xsd: FakeXenstored;
  /** The coordinator's dom0 xenstore connection. */
  readonly xs: XenstoreClient;
  /** The guests' side of xenstore (one connection for all of them). */
  readonly #guestXs: XenstoreClient;
  readonly guests = new Map<number, FakeWorldGuest>();
  readonly #bindings: FakeXenBinding[] = [];
  readonly #hvRegs: HvReg[] = [];
  #hvInstalled = false;
  /** Like the series' per-target counter: never 0, never reused. */
  #hvCookie = 0n;
  #closed = false;

  private constructor(xsd: FakeXenstored) {
    this.xsd = xsd;
    this.xs = new XenstoreClient({ transport: xsd.memoryTransport(0), timeoutMs: 2000 });
    this.#guestXs = new XenstoreClient({ transport: xsd.memoryTransport(0), timeoutMs: 2000 });
    // Xen raises VIRQ_DOM_EXC; xenstored (holding it) looks for changed domains and fires.
    this.xen.hv.domExcListeners.add(() => {
      for (const domid of this.guests.keys()) {
        const d = this.xen.hv.domains.get(domid);
        if (d === undefined) this.xsd.destroyDomain(domid);
        else if (d.shutdown || d.dying) this.xsd.shutdownDomain(domid);
      }
    });
  }

  static async create(): Promise<FakeWorld> {
    return new FakeWorld(await FakeXenstored.start());
  }

  /** A dom0 binding (each one acts as a separate process for the suspend lock). */
  binding(): FakeXenBinding {
    const b = this.xen.binding(0);
    this.#bindings.push(b);
    return b;
  }

  /** The coordinator's xenstore, typed as the interface it consumes. */
  get xenstore(): XenstoreLike {
    return this.xs;
  }

  async addGuest(options: FakeGuestOptions = {}): Promise<FakeWorldGuest> {
    const opts: FakeWorldGuest["opts"] = {
      channel: options.channel ?? "empty",
      answersXenstore: options.answersXenstore ?? true,
      answersChannel: options.answersChannel ?? true,
      suspendDelayMs: options.suspendDelayMs ?? 2,
      acksButHangs: options.acksButHangs ?? false,
      hvm: options.hvm ?? false,
      featureSuspend: options.featureSuspend ?? true,
      pvDrivers: options.pvDrivers ?? options.featureSuspend ?? true,
    };
    const guest = this.xen.createGuest({
      ...(options.domid === undefined ? {} : { domid: options.domid }),
      hvm: opts.hvm,
      pvDrivers: opts.pvDrivers,
      respondsToSuspendRequest: false, // this world drives it from xenstore instead
    });
    const domid = guest.domid;
    this.xsd.introduceDomain(domid);
    const entry: FakeWorldGuest = { domid, guest, channelPort: undefined, opts };
    this.guests.set(domid, entry);
    if (opts.featureSuspend) await this.xs.write(featureSuspendKey(domid), "1");
    await this.xs.write(controlShutdownKey(domid), "");
    await this.#advertiseChannel(entry);
    // After a full (non-cooperative) resume the guest's ports are gone: advertise a new one.
    guest.onResume((fast) => {
      if (!fast) void this.#advertiseChannel(entry);
    });
    await this.#watchControl(entry);
    return entry;
  }

  async #advertiseChannel(entry: FakeWorldGuest): Promise<void> {
    const { domid, guest, opts } = entry;
    const key = suspendChannelKey(domid);
    switch (opts.channel) {
      case "absent":
        return;
      case "empty":
        await this.xs.write(key, "");
        return;
      case "garbage":
        await this.xs.write(key, "12abc\u0000; rm -rf /");
        return;
      case "stale": {
        // A port that was allocated and closed again (e.g. before a kexec): well-formed, unusable.
        const port = guest.allocUnbound(0);
        guest.closePort(port);
        await this.xs.write(key, String(port));
        return;
      }
      case "ok": {
        const port = guest.allocUnbound(0);
        entry.channelPort = port;
        guest.onEvent(port, () => {
          if (!opts.answersChannel || this.#pausedOrGone(domid)) return;
          setTimeout(() => {
            this.#suspendIfRunning(domid);
          }, opts.suspendDelayMs);
        });
        await this.xs.write(key, String(port));
        return;
      }
    }
  }

  /**
   * The guest closes its suspend channel and, unless `withdraw`, advertises a new one (what a
   * kexec'd or reinstalled guest kernel does); returns the new port (undefined when withdrawn).
   */
  async renewChannel(domid: number, opts: { withdraw?: boolean } = {}): Promise<number | undefined> {
    const entry = this.guests.get(domid);
    if (entry === undefined) throw new Error(`no guest ${domid}`);
    if (entry.channelPort !== undefined) entry.guest.closePort(entry.channelPort);
    entry.channelPort = undefined;
    if (opts.withdraw === true) {
      await this.xs.write(suspendChannelKey(domid), "");
      return undefined;
    }
    await this.#advertiseChannel(entry);
    return entry.channelPort;
  }

  #pausedOrGone(domid: number): boolean {
    const d = this.xen.hv.domains.get(domid);
    return d === undefined || d.paused || d.dying || d.shutdown;
  }

  #suspendIfRunning(domid: number): void {
    if (this.#closed || this.#pausedOrGone(domid)) return;
    this.guests.get(domid)?.guest.suspend();
  }

  /** Linux's shutdown_handler: read control/shutdown, clear it (the ack), then suspend. */
  async #watchControl(entry: FakeWorldGuest): Promise<void> {
    const key = controlShutdownKey(entry.domid);
    const watch = await this.#guestXs.watch(key);
    void (async () => {
      for (let r = await watch.next(); r.done !== true; r = await watch.next()) {
        if (this.#closed) break;
        const { opts, domid } = entry;
        if (!opts.answersXenstore || this.#pausedOrGone(domid)) continue;
        const v = await this.#guestXs.tryReadString(key).catch(() => undefined);
        if (v !== "suspend") continue;
        await this.#guestXs.write(key, "").catch(() => undefined);
        if (opts.acksButHangs) continue;
        setTimeout(() => {
          this.#suspendIfRunning(domid);
        }, opts.suspendDelayMs);
      }
    })().catch(() => undefined);
  }

  /** The hypervisor series: XEN_DOMCTL_suspend_notify REGISTER/UNREGISTER/QUERY and its events. */
  installHvNotify(): void {
    if (this.#hvInstalled) return;
    this.#hvInstalled = true;
    const hv = this.xen.hv;
    this.xen.registerDomctl(XEN_DOMCTL_suspend_notify, (domid, u) => {
      const op = u.readUInt32LE(0);
      const args = `cmd=${XEN_DOMCTL_suspend_notify}, dom=${domid}`;
      const fail = (code: string): never => {
        throw xenError("xencall1(domctl)", args, code);
      };
      if (!hv.domains.has(domid)) fail("ESRCH");
      if (domid === 0) fail("EINVAL");
      if (u.readUInt32LE(20) !== 0) fail("EINVAL");
      switch (op) {
        case HV_NOTIFY_OP.register: {
          const mask = u.readUInt32LE(4);
          const flags = u.readUInt32LE(8);
          if (mask === 0 || (mask & ~0xf) !== 0 || (flags & ~0x1) !== 0) fail("EINVAL");
          if (this.#hvRegs.filter((r) => r.target === domid).length >= 8) fail("EBUSY");
          const port = hv.allocUnbound(0, 0, undefined, "suspend_notify", args);
          const cookie = ++this.#hvCookie;
          this.#hvRegs.push({ target: domid, registrant: 0, port, mask, flags, cookie });
          u.writeUInt32LE(port, 12);
          u.writeBigUInt64LE(cookie, HV_NOTIFY_OFF_COOKIE);
          return;
        }
        case HV_NOTIFY_OP.unregister: {
          const port = u.readUInt32LE(12);
          const cookie = u.readBigUInt64LE(HV_NOTIFY_OFF_COOKIE);
          if (port === 0 || cookie === 0n) fail("EINVAL");
          // Port and cookie: a port number alone may by now name another registration.
          const i = this.#hvRegs.findIndex((r) => r.target === domid && r.port === port && r.cookie === cookie);
          if (i < 0) fail("ENOENT");
          this.#hvRegs.splice(i, 1);
          hv.close(0, port);
          return;
        }
        case HV_NOTIFY_OP.query: {
          const regs = this.#hvRegs.filter((r) => r.target === domid);
          u.writeUInt32LE(regs.length, 16);
          regs.forEach((r, i) => {
            const o = 24 + 12 * i;
            u.writeUInt16LE(r.registrant, o);
            u.writeUInt16LE(r.flags, o + 2);
            u.writeUInt32LE(r.port, o + 4);
            u.writeUInt32LE(r.mask, o + 8);
          });
          return;
        }
        default:
          fail("EOPNOTSUPP");
      }
    });
    hv.notifyShutdown = (d, reason) => {
      const ev = reason === 2 ? HV_NOTIFY_EV.suspend : reason === 3 ? HV_NOTIFY_EV.crash : HV_NOTIFY_EV.shutdown;
      return this.#hvSignal(d.domid, ev);
    };
    const destroy = hv.destroyDomain.bind(hv);
    hv.destroyDomain = (domid) => {
      this.#hvSignal(domid, HV_NOTIFY_EV.dying);
      for (const r of this.#hvRegs.filter((x) => x.target === domid)) hv.close(0, r.port);
      this.#hvRegs.splice(0, this.#hvRegs.length, ...this.#hvRegs.filter((x) => x.target !== domid));
      destroy(domid);
    };
  }

  /** Signals the registrations on `domid` for `ev`; true when one with F_NO_DOM_EXC was delivered (bound). */
  #hvSignal(domid: number, ev: number): boolean {
    let suppress = false;
    for (const r of this.#hvRegs) {
      if (r.target !== domid || (r.mask & ev) === 0) continue;
      const c = this.xen.hv.domains.get(0)?.channels.get(r.port);
      if (c?.state !== "interdomain") continue;
      this.xen.hv.setPending(c.remoteDom, c.remotePort);
      // Never for a dying domain: xenstored relies on VIRQ_DOM_EXC to release it.
      if ((r.flags & HV_NOTIFY_F_NO_DOM_EXC) !== 0 && ev !== HV_NOTIFY_EV.dying) suppress = true;
    }
    return suppress;
  }

  /** suspend_notify registrations on `domid` (leak checks). */
  hvRegistrations(domid: number): number {
    return this.#hvRegs.filter((r) => r.target === domid).length;
  }

  /** Bound ports across the bindings this world handed out. */
  boundPorts(): number {
    return this.#bindings.reduce((n, b) => n + b.stats().boundPorts, 0);
  }

  /** The XEN_DOMCTL_subscribe port of `domid` (0 = none). */
  subscription(domid: number): number {
    return this.xen.hv.domains.get(domid)?.suspendEvtchn ?? 0;
  }

  domainState(domid: number): "running" | "suspended" | "paused" | "crashed" | "shutdown" | "gone" {
    const d = this.xen.hv.domains.get(domid);
    if (d === undefined) return "gone";
    if (d.shutdown) return d.shutdownReason === 2 ? "suspended" : d.shutdownReason === 3 ? "crashed" : "shutdown";
    if (d.paused) return "paused";
    return "running";
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.xs.close();
    await this.#guestXs.close();
    await this.xsd.stop();
  }
}


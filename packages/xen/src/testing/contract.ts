// ONE contract suite for every XenBinding: the fake (always) and the real addon (in a dom0).
// Jest globals only; compiled with the package so the lab can import it from dist/.
import { XEN_DOMCTL_getdomaininfo, XEN_DOMCTL_pausedomain } from "../constants";
import { isXenError, XenError } from "../errors";
import type { EvtchnHandle, XenBinding, XenStats } from "../interface";

export interface XenContractEnv {
  /** The caller's domain (0 in a dom0). */
  selfDomid: number;
  /** A running PV guest that suspends when asked (enables the suspend tests). */
  guestDomid?: number;
  /** Ask the guest to suspend: the lab writes control/shutdown=suspend; the fake calls its guest. */
  requestSuspend?: (domid: number) => Promise<void>;
  /** Per event wait (default 2000 ms; TCG is slow). */
  timeoutMs?: number;
  /** Whether a suspend lock file exists (real: the filesystem; fake: its pretend one). */
  suspendLockExists?: (path: string) => boolean;
  /**
   * Have *another process* take `domid`'s suspend lock (real: a child node that loads the addon;
   * fake: the libxl hook). Resolves once it is held, to a function that makes it let go.
   */
  holdSuspendLockElsewhere?: (domid: number) => Promise<() => Promise<void>>;
  /**
   * Have another process (libxl) take, or queue on (`wait`), the userdata lock file at `path`.
   * Resolves once it holds it, or at once for `wait`, to a function that ends it.
   */
  flockElsewhere?: (path: string, mode: "hold" | "wait") => Promise<() => Promise<unknown>>;
}

/** A domid that no test setup uses. */
const NO_SUCH_DOMID = 31999;
/** The suspend lock does not need the domain to exist: a domid no toolstack will lock. */
const LOCK_DOMID = 31998;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function expectXenError(fn: () => unknown, codes: string[], call?: string): XenError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(XenError);
  const e = caught as XenError;
  expect(codes).toContain(e.code);
  expect(typeof e.errno).toBe("number");
  if (call !== undefined) expect(e.call).toBe(call);
  expect(e.message).toContain(e.code);
  return e;
}

/** Resolves true if `port` fires on `h` within `ms`, else false (consumes the event). */
async function firesWithin(h: EvtchnHandle, port: number, ms: number): Promise<boolean> {
  try {
    await h.wait(port, { timeoutMs: ms });
    return true;
  } catch (err) {
    if (isXenError(err, "ETIMEDOUT")) return false;
    throw err;
  }
}

async function until(what: string, cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(2);
  }
}

export function describeXenContract(name: string, open: () => XenBinding, env: XenContractEnv): void {
  const timeoutMs = env.timeoutMs ?? 2000;
  const self = env.selfDomid;

  describe(`XenBinding contract: ${name}`, () => {
    let xen: XenBinding;
    let baseline: XenStats;
    const handles: EvtchnHandle[] = [];
    const openHandle = (poll = true): EvtchnHandle => {
      const h = xen.openEvtchn({ poll });
      handles.push(h);
      return h;
    };

    beforeAll(() => {
      xen = open();
      baseline = xen.stats();
    });

    afterEach(() => {
      for (const h of handles.splice(0)) h.close();
      const now = xen.stats();
      expect({ handles: now.evtchnHandles, ports: now.boundPorts }).toEqual({
        handles: baseline.evtchnHandles,
        ports: baseline.boundPorts,
      });
    });

    afterAll(() => {
      xen.close();
    });

    it("exposes the struct xen_domctl layout", () => {
      const l = xen.domctlLayout;
      expect(l.payloadOffset).toBe(16);
      expect(l.payloadSize).toBeGreaterThanOrEqual(128);
      expect(l.size).toBe(l.payloadOffset + l.payloadSize);
      expect(l.interfaceVersion).toBeGreaterThan(0);
    });

    it("getInfo(self) describes a live domain and listDomains includes it", () => {
      const info = xen.getInfo(self);
      expect(info.domid).toBe(self);
      expect(info.dying).toBe(false);
      expect(info.shutdown).toBe(false);
      expect(info.shutdownReason).toBeNull();
      expect(info.maxVcpuId).toBeGreaterThanOrEqual(0);
      expect(info.nrPages).toBeGreaterThan(0);
      expect(xen.listDomains().map((d) => d.domid)).toContain(self);
    });

    it("getInfo of an unknown domid is XenError ESRCH naming the call and domid", () => {
      const e = expectXenError(() => xen.getInfo(NO_SUCH_DOMID), ["ESRCH"], "xc_domain_getinfo");
      expect(e.args).toBe(`dom=${NO_SUCH_DOMID}`);
      expect(e.message).toMatch(/^xc_domain_getinfo\(dom=31999\): ESRCH/);
    });

    it("hvmCallbackIrq: EINVAL for a PV domain (dom0 here), ESRCH for an unknown one, each naming the call", () => {
      expect(xen.getInfo(self).hvm).toBe(false);
      expectXenError(() => xen.hvmCallbackIrq(self), ["EINVAL"], "xc_hvm_param_get");
      const e = expectXenError(() => xen.hvmCallbackIrq(NO_SUCH_DOMID), ["ESRCH"], "xc_hvm_param_get");
      expect(e.args).toBe(`dom=${NO_SUCH_DOMID}, param=HVM_PARAM_CALLBACK_IRQ`);
    });

    it("bind/notify/pending/unmask round trip between two local ports", async () => {
      const a = openHandle();
      const b = openHandle();
      const pa = a.bindUnboundPort(self);
      const pb = b.bindInterdomain(self, pa);
      expect(pa).toBeGreaterThan(0);
      expect(pb).toBeGreaterThan(0);
      expect(a.boundPorts()).toContain(pa);
      expect(b.boundPorts()).toContain(pb);

      // Xen sets the new local port pending at bind time (lost-notification fix-up).
      expect(await firesWithin(b, pb, timeoutMs)).toBe(true);
      b.unmask(pb);

      const seen: number[] = [];
      a.on("event", (p) => seen.push(p));
      b.notify(pb);
      await a.wait(pa, { timeoutMs });
      expect(seen).toEqual([pa]);

      // Not unmasked: more notifications stay pending (coalesced), nothing is delivered.
      b.notify(pb);
      b.notify(pb);
      expect(await firesWithin(a, pa, 100)).toBe(false);
      a.unmask(pa);
      expect(await firesWithin(a, pa, timeoutMs)).toBe(true);
      expect(await firesWithin(a, pa, 100)).toBe(false);
      expect(seen).toEqual([pa, pa]);
      a.unmask(pa);

      // And back the other way.
      a.notify(pa);
      expect(await firesWithin(b, pb, timeoutMs)).toBe(true);
      b.unmask(pb);
    });

    it("pending() without the poller: -1 when idle, the port once signalled", async () => {
      const a = openHandle(false);
      const b = openHandle();
      const pa = a.bindUnboundPort(self);
      const pb = b.bindInterdomain(self, pa);
      await b.wait(pb, { timeoutMs });
      expect(a.pending()).toBe(-1);
      b.notify(pb);
      let got = -1;
      await until("pending() to return the port", () => (got = a.pending()) !== -1, timeoutMs);
      expect(got).toBe(pa);
      expect(a.pending()).toBe(-1);
      a.unmask(pa);
    });

    it("unbind frees the port; the peer's notify is dropped; a second unbind is an error", async () => {
      const a = openHandle();
      const b = openHandle();
      const pa = a.bindUnboundPort(self);
      const pb = b.bindInterdomain(self, pa);
      await b.wait(pb, { timeoutMs });
      b.unmask(pb);
      const before = xen.stats().boundPorts;
      a.unbind(pa);
      expect(a.boundPorts()).not.toContain(pa);
      expect(xen.stats().boundPorts).toBe(before - 1);
      expectXenError(() => { a.unbind(pa); }, ["ENOTCONN", "EINVAL"], "xenevtchn_unbind");
      expectXenError(() => { a.notify(pa); }, ["ENOTCONN", "EINVAL"], "xenevtchn_notify");
      b.notify(pb); // peer is now unbound: Xen drops it silently
      expect(await firesWithin(a, pa, 100)).toBe(false);
    });

    it("a closed handle throws a typed error on every call; close is idempotent", () => {
      const h = xen.openEvtchn();
      const port = h.bindUnboundPort(self);
      h.close();
      h.close();
      expect(h.closed).toBe(true);
      expectXenError(() => { h.notify(port); }, ["EBADF"], "xenevtchn_notify");
      expectXenError(() => h.bindUnboundPort(self), ["EBADF"]);
      expectXenError(() => h.pending(), ["EBADF"]);
      expectXenError(() => h.fd(), ["EBADF"]);
      return expect(h.wait(port)).rejects.toBeInstanceOf(XenError);
    });

    it("notify on an unbound port and binding to a non-offered port are typed errors", () => {
      const h = openHandle();
      expectXenError(() => { h.notify(0); }, ["ENOTCONN", "EINVAL"], "xenevtchn_notify");
      // Port 0 is reserved, never unbound: EINVAL (an empty xenstore key must never get here).
      const e = expectXenError(() => h.bindInterdomain(self, 0), ["EINVAL"], "xenevtchn_bind_interdomain");
      expect(e.args).toBe(`dom=${self}, remote_port=0`);
      expectXenError(() => h.bindInterdomain(NO_SUCH_DOMID, 1), ["ESRCH"], "xenevtchn_bind_interdomain");
    });

    it("raw domctl: getdomaininfo(self) round-trips the union; a bad domid is ESRCH", () => {
      const u = xen.domctl(XEN_DOMCTL_getdomaininfo, self, Buffer.alloc(0));
      expect(u.length).toBe(xen.domctlLayout.payloadSize);
      expect(u.readUInt16LE(0)).toBe(self); // xen_domctl_getdomaininfo.domain
      expect(Number(u.readBigUInt64LE(8))).toBe(xen.getInfo(self).nrPages); // tot_pages
      expectXenError(() => xen.domctl(XEN_DOMCTL_pausedomain, NO_SUCH_DOMID, Buffer.alloc(0)), ["ESRCH"], "xencall1(domctl)");
      // A RangeError, matched by text: the addon's comes from another realm under Jest.
      expect(() => xen.domctl(XEN_DOMCTL_getdomaininfo, self, Buffer.alloc(xen.domctlLayout.payloadSize + 1))).toThrow(
        /domctl payload is \d+ bytes; the union holds \d+/,
      );
    });

    it("resumeAsync of an unknown domain rejects with a XenError", async () => {
      await expect(xen.resumeAsync(NO_SUCH_DOMID, true)).rejects.toBeInstanceOf(XenError);
    });

    const lockExists = env.suspendLockExists;
    const lockIt = lockExists !== undefined ? it : it.skip;

    lockIt("lockSuspend: the file exists while held, is gone after release; one holder per process", () => {
      const exists = lockExists ?? (() => false);
      const lock = xen.lockSuspend(LOCK_DOMID);
      try {
        expect(lock.domid).toBe(LOCK_DOMID);
        expect(lock.path).toMatch(new RegExp(`/suspend-evtchn-${LOCK_DOMID}\\.lock$`));
        expect(exists(lock.path)).toBe(true);
        expect(lock.released).toBe(false);
        // fcntl would let this process lock it twice (and drop both on one close): refused instead.
        const e = expectXenError(() => xen.lockSuspend(LOCK_DOMID), ["EBUSY"]);
        expect(e.message).toContain("already held by this process");
      } finally {
        lock.release();
      }
      expect(lock.released).toBe(true);
      expect(exists(lock.path)).toBe(false);
      lock.release(); // idempotent
      const again = xen.lockSuspend(LOCK_DOMID);
      expect(exists(again.path)).toBe(true);
      again.release();
      expect(exists(again.path)).toBe(false);
    });

    const holdElsewhere = env.holdSuspendLockElsewhere;
    (holdElsewhere !== undefined ? it : it.skip)(
      "lockSuspend: a lock held by another process is EAGAIN until it lets go",
      async () => {
        const hold = holdElsewhere ?? (() => Promise.resolve(() => Promise.resolve()));
        const letGo = await hold(LOCK_DOMID);
        try {
          const e = expectXenError(() => xen.lockSuspend(LOCK_DOMID), ["EAGAIN"]);
          expect(e.message).toContain("held by another process");
        } finally {
          await letGo();
        }
        const lock = xen.lockSuspend(LOCK_DOMID);
        lock.release();
      },
      timeoutMs * 4,
    );

    lockIt("lockToolstack: libxl's userdata lock file of the domain (its uuid in the name), one holder per process", () => {
      const exists = lockExists ?? (() => false);
      const uuid = xen.getInfo(self).uuid;
      expect(uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      const lock = xen.lockToolstack(self);
      try {
        expect(lock.path).toMatch(new RegExp(`/userdata-l\\.${self}\\.${uuid}\\.domain-userdata-lock$`));
        expect(exists(lock.path)).toBe(true);
        expect(lock.waiting()).toBe(false);
        expectXenError(() => xen.lockToolstack(self), ["EBUSY"]);
      } finally {
        lock.release();
      }
      expect(exists(lock.path)).toBe(false);
      expect(lock.released).toBe(true);
      lock.release(); // idempotent
      expectXenError(() => xen.lockToolstack(NO_SUCH_DOMID), ["ESRCH"]);
    });

    const flockElsewhere = env.flockElsewhere;
    (flockElsewhere !== undefined ? it : it.skip)(
      "lockToolstack: EAGAIN while libxl holds it; waiting() once libxl queues on ours",
      async () => {
        const other = flockElsewhere ?? (() => Promise.resolve(() => Promise.resolve()));
        const probe = xen.lockToolstack(self);
        const path = probe.path;
        probe.release();
        const end = await other(path, "hold");
        try {
          expectXenError(() => xen.lockToolstack(self), ["EAGAIN"]);
        } finally {
          await end();
        }
        const lock = xen.lockToolstack(self);
        const endWaiter = await other(path, "wait");
        try {
          await until("the other process to queue on the lock", () => lock.waiting(), timeoutMs * 2);
        } finally {
          lock.release();
          await endWaiter();
        }
        expect(lock.waiting()).toBe(false);
      },
      timeoutMs * 4,
    );

    const guest = env.guestDomid;
    const requestSuspend = env.requestSuspend;
    const guestIt = guest !== undefined && requestSuspend !== undefined ? it : it.skip;

    guestIt("resume of a running guest is EINVAL (not suspended)", () => {
      const g = guest ?? -1;
      expect(xen.getInfo(g).shutdown).toBe(false);
      expectXenError(() => { xen.resume(g, true); }, ["EINVAL"], "xc_domain_resume");
    });

    guestIt(
      "subscribeForSuspend: the suspend arrives on the subscribed port; resume; port 0 restores",
      async () => {
        const g = guest ?? -1;
        const ask = requestSuspend ?? (() => Promise.resolve());
        const h = openHandle();
        // The notification channel: a port in the guest's table offered to us, bound from here.
        const remote = xen.allocUnbound(g, self);
        const local = h.bindInterdomain(g, remote);
        expect(await firesWithin(h, local, timeoutMs)).toBe(true); // the bind-time event
        h.unmask(local);
        xen.subscribeForSuspend(g, remote);
        try {
          await ask(g);
          await h.wait(local, { timeoutMs });
          const info = xen.getInfo(g);
          expect(info.shutdown).toBe(true);
          expect(info.shutdownReasonName).toBe("suspend");
          h.unmask(local);
          await xen.resumeAsync(g, true);
          expect(xen.getInfo(g).shutdown).toBe(false);
        } finally {
          xen.subscribeForSuspend(g, 0);
        }

        // Unsubscribed: the next suspend no longer signals our port (it goes to VIRQ_DOM_EXC).
        await ask(g);
        await until("the guest to suspend", () => xen.getInfo(g).shutdownReasonName === "suspend", timeoutMs * 2);
        expect(await firesWithin(h, local, 100)).toBe(false);
        xen.resume(g, true);
        expect(xen.getInfo(g).shutdown).toBe(false);
        h.unbind(local); // the guest's port `remote` stays allocated, unbound, offered to us
      },
      timeoutMs * 6,
    );
  });
}

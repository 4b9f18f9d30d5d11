import { VIRQ_DOM_EXC, XEN_DOMCTL_subscribe } from "../../constants";
import { isXenError } from "../../errors";
import { FakeXen } from "./index";

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe("FakeXen guest model", () => {
  it("crash, poweroff and destroy raise VIRQ_DOM_EXC; destroy makes the domain ESRCH", () => {
    const fake = new FakeXen();
    const xen = fake.binding();
    const g = fake.createGuest();
    const before = fake.domExcRaised;
    g.crash();
    expect(xen.getInfo(g.domid)).toMatchObject({ shutdown: true, shutdownReason: 3, shutdownReasonName: "crash" });
    expect(fake.domExcRaised).toBe(before + 1);
    fake.destroyDomain(g.domid);
    expect(fake.domExcRaised).toBe(before + 3); // kill + destroy
    expect(() => xen.getInfo(g.domid)).toThrow(expect.objectContaining({ code: "ESRCH" }) as Error);
  });

  it("a subscribed suspend signals the port instead of VIRQ_DOM_EXC; unsubscribed it is VIRQ_DOM_EXC", async () => {
    const fake = new FakeXen();
    const xen = fake.binding();
    const g = fake.createGuest();
    const h = xen.openEvtchn();
    const remote = xen.allocUnbound(g.domid, 0);
    const local = h.bindInterdomain(g.domid, remote);
    await h.wait(local);
    h.unmask(local);
    xen.subscribeForSuspend(g.domid, remote);
    const exc = fake.domExcRaised;
    g.suspend();
    await h.wait(local, { timeoutMs: 100 });
    expect(fake.domExcRaised).toBe(exc);
    xen.resume(g.domid, true);
    xen.subscribeForSuspend(g.domid, 0);
    g.suspend();
    expect(fake.domExcRaised).toBe(exc + 1);
    h.close();
  });

  it("the subscription is sticky across a non-cooperative resume: it names a closed port", async () => {
    const fake = new FakeXen();
    const xen = fake.binding();
    const g = fake.createGuest();
    const h = xen.openEvtchn();
    const remote = xen.allocUnbound(g.domid, 0);
    const local = h.bindInterdomain(g.domid, remote);
    await h.wait(local);
    h.unmask(local);
    xen.subscribeForSuspend(g.domid, remote);
    g.suspend();
    await h.wait(local);
    h.unmask(local);
    xen.resume(g.domid, false); // guest ports gone, subscription kept
    expect(fake.hv.domain(g.domid, "t").suspendEvtchn).toBe(remote);
    const exc = fake.domExcRaised;
    g.suspend(); // stale port: no event for us, and no VIRQ_DOM_EXC either
    await tick();
    expect(h.clearLatched(local)).toBe(false);
    expect(fake.domExcRaised).toBe(exc);
    h.close();
  });

  it("a guest that suspends when its channel is notified (XenLinux style)", async () => {
    const fake = new FakeXen();
    const xen = fake.binding();
    const g = fake.createGuest();
    const guestPort = g.allocUnbound(0);
    g.suspendOnNotify(guestPort);
    const h = xen.openEvtchn();
    const local = h.bindInterdomain(g.domid, guestPort);
    h.notify(local);
    const end = Date.now() + 500; // the guest's handler runs on a timer
    while (!xen.getInfo(g.domid).shutdown && Date.now() < end) await new Promise((r) => setTimeout(r, 1));
    expect(xen.getInfo(g.domid).shutdownReasonName).toBe("suspend");
    expect(g.received).toContain(guestPort);
    h.close();
  });

  it("an unresponsive guest ignores suspend requests", async () => {
    const fake = new FakeXen();
    const g = fake.createGuest({ respondsToSuspendRequest: false });
    await g.requestSuspend();
    await new Promise((r) => setTimeout(r, 10));
    expect(g.info.shutdown).toBe(false);
    expect(g.suspendRequests).toBe(1);
  });

  it("pause/unpause count; unpause of a running domain is EINVAL; pausing self is EINVAL", () => {
    const fake = new FakeXen();
    const xen = fake.binding();
    const g = fake.createGuest();
    xen.pause(g.domid);
    expect(xen.getInfo(g.domid).paused).toBe(true);
    xen.unpause(g.domid);
    expect(xen.getInfo(g.domid).paused).toBe(false);
    expect(() => { xen.unpause(g.domid); }).toThrow(expect.objectContaining({ code: "EINVAL" }) as Error);
    expect(() => { xen.pause(0); }).toThrow(expect.objectContaining({ code: "EINVAL" }) as Error);
  });

  it("VIRQ_DOM_EXC is held by xenstored: binding it again is EEXIST", () => {
    const xen = new FakeXen().binding();
    const h = xen.openEvtchn();
    try {
      h.bindVirq(VIRQ_DOM_EXC);
      throw new Error("expected EEXIST");
    } catch (err) {
      expect(isXenError(err, "EEXIST")).toBe(true);
    } finally {
      h.close();
    }
  });

  it("without xenstored a dom0 handle receives VIRQ_DOM_EXC", async () => {
    const fake = new FakeXen({ xenstoredBindsDomExc: false });
    const xen = fake.binding();
    const h = xen.openEvtchn();
    const port = h.bindVirq(VIRQ_DOM_EXC);
    fake.createGuest().crash();
    await h.wait(port, { timeoutMs: 100 });
    h.close();
  });

  it("raw domctl: built-in subscribe, and registerDomctl for a new command", () => {
    const fake = new FakeXen();
    const xen = fake.binding();
    const g = fake.createGuest();
    const p = Buffer.alloc(4);
    p.writeUInt32LE(7);
    xen.domctl(XEN_DOMCTL_subscribe, g.domid, p);
    expect(fake.hv.domain(g.domid, "t").suspendEvtchn).toBe(7);
    expect(() => xen.domctl(90, g.domid, Buffer.alloc(0))).toThrow(expect.objectContaining({ code: "ENOSYS" }) as Error);
    fake.registerDomctl(90, (domid, u) => {
      u.writeUInt32LE(domid + 1000, 4);
    });
    expect(xen.domctl(90, g.domid, Buffer.alloc(0)).readUInt32LE(4)).toBe(g.domid + 1000);
  });
});

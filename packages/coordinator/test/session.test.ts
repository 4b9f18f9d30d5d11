// The suspend state machine on the fake host: every path's happy cycle and every failure branch.
import { EventEmitter } from "node:events";

import { isXenError, xenError } from "@fastsuspend/xen";

import { CoordinatorError, HV_NOTIFY_EV_ALL, SuspendSession, resolveXsResume, SuspendTimeoutError, CheckpointRunner, controlShutdownKey, detect, hvNotifyRegister, hvNotifyUnregister, installSignalGuard, type CycleTimings, type CycleVerdict, type PathName, type SessionOptions } from "../src";
import { FakeWorld, type FakeGuestOptions, type FakeWorldGuest } from "../src/testing";

let world: FakeWorld;
const sessions: SuspendSession[] = [];

beforeEach(async () => {
  world = await FakeWorld.create();
});
afterEach(async () => {
  for (const s of sessions.splice(0)) await s.close();
  await world.close();
});

async function setup(guestOpts: FakeGuestOptions = {}, sessionOpts: SessionOptions = {}): Promise<{ s: SuspendSession; domid: number }> {
  const g = await world.addGuest(guestOpts);
  const s = new SuspendSession(world.binding(), world.xenstore, g.domid, { defaultTimeoutMs: 500, lateSuspendGraceMs: 100, outstandingWaitMs: 100, ...sessionOpts });
  sessions.push(s);
  return { s, domid: g.domid };
}

function guestOpts(domid: number): FakeWorldGuest["opts"] {
  const g = world.guests.get(domid);
  if (g === undefined) throw new Error(`no guest ${domid}`);
  return g.opts;
}

/** Nothing of the session is left: no ports, no subscription, no registration, no lock. */
function expectNothingHeld(domid: number): void {
  expect(world.boundPorts()).toBe(0);
  expect(world.subscription(domid)).toBe(0);
  expect(world.hvRegistrations(domid)).toBe(0);
  expect(world.xen.suspendLockExists(domid)).toBe(false);
}

const ALL_PATHS: { path: PathName; channel: "ok" | "empty"; hv: boolean }[] = [
  { path: "xenstore+watch", channel: "empty", hv: false },
  { path: "xenstore+poll", channel: "empty", hv: false },
  { path: "xenstore+evtchn", channel: "empty", hv: false },
  { path: "xenstore+virq", channel: "empty", hv: true },
  { path: "evtchn+evtchn", channel: "ok", hv: false },
  { path: "evtchn+virq", channel: "ok", hv: true },
  { path: "evtchn+watch", channel: "ok", hv: false },
  { path: "evtchn+poll", channel: "ok", hv: false },
];

describe.each(ALL_PATHS)("path $path", ({ path, channel, hv }) => {
  it("completes cycles, reusing its channels, and close() leaves nothing behind", async () => {
    if (hv) world.installHvNotify();
    const { s, domid } = await setup({ channel }, { path });
    await s.open();
    expect(s.path).toBe(path);
    const portsAfterOpen = world.boundPorts();
    for (let i = 0; i < 3; i++) {
      const t = await s.cycle();
      expect(t.path).toBe(path);
      expect(t.suspendMs).toBeGreaterThan(0);
      expect(t.totalMs).toBeGreaterThanOrEqual(t.suspendMs);
      expect(world.domainState(domid)).toBe("running");
      expect(world.boundPorts()).toBe(portsAfterOpen); // no per-cycle setup
    }
    expect(world.xen.guest(domid).suspends).toBe(3);
    const report = await s.close();
    expect(report).toEqual({ resumed: false, outstanding: false, problems: [] });
    expectNothingHeld(domid);
    expect(await s.close()).toEqual(report); // idempotent
  });
});

// Session 15: each cycle of a virq path raised VIRQ_DOM_EXC, so xenstored fired @releaseDomain
// per cycle and Xen 4.20's xenconsoled (one 32751-domain getinfolist per event) fell so far behind
// that `xl create` of a new guest failed. Our own suspends now hold it back (F_NO_DOM_EXC, suspend
// only, bound while the suspend is ours); everything else raises it as on stock Xen.
describe("VIRQ_DOM_EXC on the virq paths", () => {
  it.each(["session", "operation"] as const)("hold %s: our cycles raise none; a crash still does", async (hold) => {
    world.installHvNotify();
    const { s, domid } = await setup({ channel: "ok" }, { path: "evtchn+virq", hold });
    await s.open();
    const before = world.xen.hv.domExcRaised;
    for (let i = 0; i < 3; i++) await s.cycle();
    expect(world.xen.guest(domid).suspends).toBe(3);
    expect(world.xen.hv.domExcRaised).toBe(before);
    // Between cycles, only the session's registration: libxl may suspend (a stock guest's xl save
    // does not take our suspend lock even with hold "session").
    expect(world.hvRegistrations(domid)).toBe(1);
    world.xen.guest(domid).crash();
    expect(world.xen.hv.domExcRaised).toBe(before + 1);
  });

  it.each(["session", "operation"] as const)("hold %s: a suspend that is not ours, between our cycles, raises it as on stock Xen", async (hold) => {
    world.installHvNotify();
    const { s, domid } = await setup({ channel: "empty" }, { path: "xenstore+virq", hold });
    await s.open();
    await s.cycle();
    const before = world.xen.hv.domExcRaised;
    // What libxl's xenstore path waits for after writing control/shutdown (@releaseDomain).
    world.xen.guest(domid).suspend();
    expect(world.xen.hv.domExcRaised).toBe(before + 1);
  });

  it.each(["session", "operation"] as const)("hold %s: with one slot left (7 other registrations), the session still works, raising VIRQ_DOM_EXC as on stock Xen", async (hold) => {
    world.installHvNotify();
    const { s, domid } = await setup({ channel: "ok" }, { path: "evtchn+virq", hold });
    const other = world.binding();
    for (let i = 0; i < 7; i++) hvNotifyRegister(other, domid, HV_NOTIFY_EV_ALL, 0);
    await s.open();
    const before = world.xen.hv.domExcRaised;
    await s.cycle();
    expect(world.xen.hv.domExcRaised).toBe(before + 1);
    expect(world.hvRegistrations(domid)).toBe(8);
    expect((await s.close()).problems).toEqual([]);
    expect(world.hvRegistrations(domid)).toBe(7);
  });

  it("close() leaves neither registration behind", async () => {
    world.installHvNotify();
    const { s, domid } = await setup({ channel: "ok" }, { path: "evtchn+virq" });
    await s.open();
    await s.cycle();
    expect((await s.close()).problems).toEqual([]);
    expectNothingHeld(domid);
  });
});

describe("choosing a path", () => {
  it("prefers the guest channel, then virq > subscribe > watch", async () => {
    world.installHvNotify();
    const a = await world.addGuest({ channel: "ok" });
    const b = await world.addGuest({ channel: "empty" });
    const xen = world.binding();
    expect((await detect(xen, world.xenstore, a.domid)).paths[0]).toBe("evtchn+virq");
    const capsB = await detect(xen, world.xenstore, b.domid);
    expect(capsB.paths.slice(0, 4)).toEqual(["xenstore+virq", "xenstore+evtchn", "xenstore+watch", "xenstore+poll"]);
    expect(capsB.hvNotify.available).toBe(true);
  });

  it("without the hypervisor series, virq is not offered (the probe's ENOSYS)", async () => {
    const g = await world.addGuest({ channel: "ok" });
    const caps = await detect(world.binding(), world.xenstore, g.domid);
    expect(caps.hvNotify).toEqual({ available: false, detail: "ENOSYS" });
    expect(caps.paths[0]).toBe("evtchn+evtchn");
    const s = new SuspendSession(world.binding(), world.xenstore, g.domid, { path: "evtchn+virq" });
    await expect(s.open()).rejects.toThrow(/path evtchn\+virq is not available for domain \d+ .*suspend_notify: ENOSYS/);
    expectNothingHeld(g.domid);
  });

  it.each(["empty", "absent", "garbage", "stale"] as const)("a %s suspend channel key is 'no channel'", async (channel) => {
    const g = await world.addGuest({ channel });
    const caps = await detect(world.binding(), world.xenstore, g.domid);
    expect(caps.guestChannel.status).toBe({ empty: "absent", absent: "absent", garbage: "garbage", stale: "unbindable" }[channel]);
    expect(caps.triggers).not.toContain("evtchn");
    expect(caps.paths[0]).toBe("xenstore+evtchn");
    const s = new SuspendSession(world.binding(), world.xenstore, g.domid, { path: "evtchn+evtchn" });
    await expect(s.open()).rejects.toMatchObject({ code: "ENOPATH" });
    expectNothingHeld(g.domid);
    expect(world.boundPorts()).toBe(0); // detect's verification bind was undone
  });

  it("an HVM/PVH guest is asked through xenstore when its PV drivers are up, by Xen's word, not its feature-suspend node", async () => {
    // A migrated or restored PVH guest: the new domain's xenstore has lost the feature-suspend the
    // guest wrote at boot (session 12's bench: xenstore+watch "not available" after xl migrate).
    const migrated = await world.addGuest({ channel: "ok", hvm: true, featureSuspend: false, pvDrivers: true });
    const caps = await detect(world.binding(), world.xenstore, migrated.domid);
    expect({ featureSuspend: caps.featureSuspend, pvControl: caps.pvControl, triggers: caps.triggers }).toEqual({ featureSuspend: false, pvControl: true, triggers: ["evtchn", "xenstore"] });
    expect(caps.pvControlDetail).toBe("HVM_PARAM_CALLBACK_IRQ is set");
    // HVM without PV drivers: xc_domain_shutdown(SUSPEND) only, whatever a node says.
    const bare = await world.addGuest({ hvm: true, featureSuspend: true, pvDrivers: false });
    const bareCaps = await detect(world.binding(), world.xenstore, bare.domid);
    expect([bareCaps.triggers, bareCaps.pvControlDetail]).toEqual([["shutdown"], "HVM_PARAM_CALLBACK_IRQ is 0"]);
    // Xen does not answer (the domain going away): the guest's feature-suspend decides, and says so.
    const real = world.binding();
    const silent = new Proxy(real, {
      get: (t, k): unknown => {
        if (k === "hvmCallbackIrq") return () => { throw xenError("xc_hvm_param_get", `${bare.domid}`, "ESRCH"); };
        const v: unknown = Reflect.get(t, k, t);
        return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(t) : v;
      },
    });
    const fallback = await detect(silent, world.xenstore, bare.domid);
    expect([fallback.pvControl, fallback.pvControlDetail]).toEqual([true, expect.stringMatching(/^HVM_PARAM_CALLBACK_IRQ unreadable \(.*ESRCH.*\): control\/feature-suspend = 1 decided$/)]);
    // PV: always xenstore (HVM_PARAM_CALLBACK_IRQ is EINVAL there and not asked).
    const pv = await world.addGuest({ featureSuspend: false });
    const pvCaps = await detect(world.binding(), world.xenstore, pv.domid);
    expect([pvCaps.triggers, pvCaps.pvControlDetail]).toEqual([["xenstore"], "PV guest"]);
  });

  it("refuses dom0 (ECONTROLDOMAIN) and unknown domains (ENODOMAIN), each with its own code", async () => {
    const xen = world.binding();
    await expect(new SuspendSession(xen, world.xenstore, 0).open()).rejects.toMatchObject({ code: "ECONTROLDOMAIN", message: expect.stringMatching(/domain 0 is the control domain/) as unknown });
    await expect(new SuspendSession(xen, world.xenstore, 4242).open()).rejects.toMatchObject({ code: "ENODOMAIN", message: expect.stringMatching(/domain 4242 does not exist/) as unknown });
    expect(world.xen.suspendLockExists(4242)).toBe(false);
  });
});

describe("failures", () => {
  it("lock held by libxl: a clear error, nothing bound", async () => {
    const g = await world.addGuest({ channel: "ok" });
    const release = world.xen.holdSuspendLockElsewhere(g.domid);
    const s = new SuspendSession(world.binding(), world.xenstore, g.domid);
    const err = await s.open().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CoordinatorError);
    expect(err).toMatchObject({ code: "ELOCKED", domid: g.domid });
    expect((err as Error).message).toMatch(/suspend lock .* is held by another process \(libxl/);
    expect(world.boundPorts()).toBe(0);
    expect(world.subscription(g.domid)).toBe(0);
    expect(world.xen.suspendLockExists(g.domid)).toBe(true); // still libxl's
    release();
    // detect does not bind a channel libxl holds either.
    const other = world.xen.holdSuspendLockElsewhere(g.domid);
    expect((await detect(world.binding(), world.xenstore, g.domid)).guestChannel.status).toBe("locked");
    other();
  });

  it("a second session on the same domain in this process is refused", async () => {
    const { s, domid } = await setup();
    await s.open();
    const b = new SuspendSession(world.binding(), world.xenstore, domid);
    // Another binding is another "process" in the fake: EAGAIN -> ELOCKED.
    await expect(b.open()).rejects.toMatchObject({ code: "ELOCKED" });
  });

  it("guest never answers (xenstore): timeout, request withdrawn, guest left running", async () => {
    const { s, domid } = await setup({ answersXenstore: false }, { path: "xenstore+watch" });
    await s.open();
    const err = await s.suspend({ timeoutMs: 60 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SuspendTimeoutError);
    const t = err as SuspendTimeoutError;
    expect(t.details).toMatchObject({ withdrawn: true, resumedLateSuspend: false, path: "xenstore+watch" });
    expect(t.message).toMatch(new RegExp(`domain ${domid} did not suspend within 60 ms via xenstore\\+watch \\(request withdrawn\\); it is left running`));
    expect(await world.xs.tryReadString(controlShutdownKey(domid))).toBe("");
    expect(world.domainState(domid)).toBe("running");
    // The guest wakes up later: nothing asks it to suspend any more.
    guestOpts(domid).answersXenstore = true;
    await world.xs.write(`/local/domain/${domid}/control/poke`, "1");
    await new Promise((r) => setTimeout(r, 30));
    expect(world.domainState(domid)).toBe("running");
    await s.close();
    expectNothingHeld(domid);
  });

  it("guest acks but suspends only after the timeout: it is resumed and reported", async () => {
    const { s, domid } = await setup({ suspendDelayMs: 80 }, { path: "xenstore+poll", lateSuspendGraceMs: 300 });
    await s.open();
    const err = (await s.suspend({ timeoutMs: 20 }).catch((e: unknown) => e)) as SuspendTimeoutError;
    expect(err).toBeInstanceOf(SuspendTimeoutError);
    expect(err.details).toMatchObject({ withdrawn: false, resumedLateSuspend: true });
    expect(world.domainState(domid)).toBe("running");
    expect(world.xen.guest(domid).resumes).toBe(1);
  });

  it("guest channel never answers: timeout says the event cannot be withdrawn", async () => {
    const { s, domid } = await setup({ channel: "ok", answersChannel: false }, { path: "evtchn+evtchn" });
    await s.open();
    const err = (await s.suspend({ timeoutMs: 40 }).catch((e: unknown) => e)) as SuspendTimeoutError;
    expect(err.details).toMatchObject({ unrevocable: true, withdrawn: false, resumedLateSuspend: false });
    expect(world.domainState(domid)).toBe("running");
    await s.close();
    expectNothingHeld(domid);
  });

  it("fallback: a channel that never answers falls back to the xenstore trigger", async () => {
    const { s, domid } = await setup({ channel: "ok", answersChannel: false }, { fallback: true });
    await s.open();
    expect(s.path).toBe("evtchn+evtchn");
    const r = await s.suspend({ timeoutMs: 40 });
    expect(r.path).toBe("xenstore+evtchn");
    expect(r.failedPaths.map((f) => f.path)).toEqual(["evtchn+evtchn"]);
    await s.resume();
    expect(world.domainState(domid)).toBe("running");
    await s.close();
    expectNothingHeld(domid);
  });

  it.each(["xenstore+watch", "evtchn+evtchn", "xenstore+poll"] as const)("guest crashes mid-wait (%s): the error names it", async (path) => {
    const { s, domid } = await setup({ channel: "ok", answersXenstore: false, answersChannel: false }, { path });
    await s.open();
    const p = s.suspend({ timeoutMs: 1000 });
    setTimeout(() => { world.xen.guest(domid).crash(); }, 10);
    const err = await p.catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "EDOMAIN" });
    expect((err as Error).message).toBe(`domain ${domid} crashed while waiting for it to suspend (${path})`);
    await s.close();
    expectNothingHeld(domid);
  });

  it("guest destroyed mid-wait (watch): the error says so; close() copes with the gone domain", async () => {
    const { s, domid } = await setup({ answersXenstore: false }, { path: "xenstore+watch" });
    await s.open();
    const p = s.suspend({ timeoutMs: 1000 });
    setTimeout(() => { world.xen.destroyDomain(domid); }, 10);
    await expect(p).rejects.toMatchObject({ code: "ENODOMAIN", message: `domain ${domid} was destroyed while waiting for it to suspend (xenstore+watch)` });
    expect(await s.close()).toMatchObject({ resumed: false });
    expectNothingHeld(domid);
  });

  it("guest destroyed mid-wait (virq): DYING wakes us, unregister copes with ENOENT", async () => {
    world.installHvNotify();
    const { s, domid } = await setup({ answersXenstore: false }, { path: "xenstore+virq" });
    await s.open();
    expect(world.hvRegistrations(domid)).toBe(1); // the quiet one only from arm() to release()
    const p = s.suspend({ timeoutMs: 1000 });
    setTimeout(() => { world.xen.destroyDomain(domid); }, 10);
    await expect(p).rejects.toMatchObject({ code: "ENODOMAIN" });
    const report = await s.close();
    expect(report.problems).toEqual([]);
    expectNothingHeld(domid);
  });

  it("use before open, resume when running, suspend when suspended, two at once, use after close: a code for each", async () => {
    const { s } = await setup();
    await expect(s.suspend()).rejects.toMatchObject({ code: "ESESSION" });
    await s.open();
    await expect(s.open()).rejects.toMatchObject({ code: "ESESSION" });
    await expect(s.resume()).rejects.toMatchObject({ code: "ENOTSUSPENDED", message: expect.stringMatching(/is not suspended: nothing to resume/) as unknown });
    const first = s.suspend();
    await expect(s.suspend()).rejects.toMatchObject({ code: "EINPROGRESS" });
    await first;
    await expect(s.suspend()).rejects.toMatchObject({ code: "ESUSPENDED", message: expect.stringMatching(/already suspended/) as unknown });
    await s.close();
    await expect(s.suspend()).rejects.toMatchObject({ code: "ECLOSED" });
  });

  it("an interrupted suspend is EINTERRUPTED, and the guest is left running", async () => {
    const { s, domid } = await setup({ answersXenstore: false }, { path: "xenstore+watch" });
    await s.open();
    const p = s.suspend({ timeoutMs: 5000 });
    setTimeout(() => { s.interrupt(); }, 20);
    await expect(p).rejects.toMatchObject({ code: "EINTERRUPTED" });
    expect(world.domainState(domid)).toBe("running");
    await s.close();
  });

  it("close() of a suspended session resumes the guest", async () => {
    const { s, domid } = await setup({}, { path: "xenstore+evtchn" });
    await s.open();
    await s.suspend();
    expect(world.domainState(domid)).toBe("suspended");
    expect(await s.close()).toEqual({ resumed: true, outstanding: false, problems: [] });
    expect(world.domainState(domid)).toBe("running");
    expectNothingHeld(domid);
  });

  it("after close, Xen raises VIRQ_DOM_EXC (@releaseDomain) for the guest's suspends again", async () => {
    const { s, domid } = await setup({}, { path: "xenstore+evtchn" });
    await s.open();
    const before = world.xen.domExcRaised;
    await s.cycle();
    expect(world.xen.domExcRaised).toBe(before); // subscribed: replaced by our port
    await s.close();
    world.xen.guest(domid).suspend();
    expect(world.xen.domExcRaised).toBe(before + 1);
  });

  it("full resume rebinds the guest's new channel before the next suspend", async () => {
    const { s, domid } = await setup({ channel: "ok" }, { path: "evtchn+evtchn" });
    await s.open();
    await s.suspend();
    await s.resume({ fast: false });
    await new Promise((r) => setTimeout(r, 10)); // the guest re-advertises
    const t = await s.cycle();
    expect(t.path).toBe("evtchn+evtchn");
    await s.close();
    expectNothingHeld(domid);
  });

  it("deferred XS_RESUME keeps working with @releaseDomain (fires once per XS_RESUME)", async () => {
    const { s } = await setup({}, { path: "xenstore+watch", xsResume: "deferred" });
    await s.open();
    for (let i = 0; i < 3; i++) await s.cycle();
    expect((await s.close()).problems).toEqual([]);
  });

  it("deferred XS_RESUME does not hold up an event-channel path's next suspend", async () => {
    const { s, domid } = await setup({ channel: "ok" }, { path: "evtchn+evtchn", xsResume: "deferred" });
    await s.open();
    await s.cycle();
    const r = await s.suspend();
    expect(r.xsResumeWaitMs).toBe(0);
    await s.resume();
    expect((await s.close()).problems).toEqual([]);
    expectNothingHeld(domid);
  });

  it("skipping XS_RESUME: the next watch-path suspend only sees the domain at its final check", async () => {
    const { s } = await setup({}, { path: "xenstore+watch", xsResume: "skip" });
    await s.open();
    await s.cycle();
    // cxenstored-like fake: @releaseDomain stays disarmed, so the wait runs to its deadline and the
    // last getInfo finds the guest suspended (slow, but not a failure).
    const r = await s.suspend({ timeoutMs: 80 });
    expect(r.awaitMs).toBeGreaterThanOrEqual(70);
    await s.resume();
  });
});

describe("xsResume auto", () => {
  const xsWith = (value: string | undefined) => ({ tryReadString: (path: string) => Promise.resolve(path === "/tool/xenstored" ? value : undefined) });

  it("skips XS_RESUME only where /tool/xenstored names oxenstored (C xenstored leaves it empty)", async () => {
    expect(await resolveXsResume("auto", xsWith("/usr/lib/xen-4.17/bin/oxenstored"))).toBe("skip");
    expect(await resolveXsResume("auto", xsWith("oxenstored\n"))).toBe("skip");
    expect(await resolveXsResume("auto", xsWith(""))).toBe("inline");
    expect(await resolveXsResume("auto", xsWith(undefined))).toBe("inline");
    expect(await resolveXsResume("auto", xsWith("/usr/sbin/xenstored"))).toBe("inline");
    expect(await resolveXsResume("auto", xsWith("/opt/oxenstored-wrapper"))).toBe("inline");
    expect(await resolveXsResume("deferred", xsWith("oxenstored"))).toBe("deferred");
  });

  it("on a cxenstored-like xenstore it stays inline, so @releaseDomain is re-armed for the next watch-path suspend", async () => {
    const { s } = await setup({}, { path: "xenstore+watch", xsResume: "auto" });
    await s.open();
    expect(s.xsResumeMode).toBe("inline");
    await s.cycle();
    const r = await s.suspend({ timeoutMs: 400 });
    expect(r.awaitMs).toBeLessThan(300);
    await s.resume();
    expect((await s.close()).problems).toEqual([]);
  });

  it("is the default: with no xsResume option a session on oxenstored skips XS_RESUME, and on C xenstored sends it inline", async () => {
    const { s: cx } = await setup({ channel: "ok" }, { path: "evtchn+evtchn" });
    await cx.open();
    expect(cx.xsResumeMode).toBe("inline");
    expect((await cx.close()).problems).toEqual([]);
    await world.xenstore.write("/tool/xenstored", "/usr/lib/xen-4.17/bin/oxenstored");
    try {
      const { s: ox } = await setup({ channel: "ok" }, { path: "evtchn+evtchn" });
      await ox.open();
      expect(ox.xsResumeMode).toBe("skip");
      expect((await ox.cycle()).xsResumeMs).toBe(0);
      expect((await ox.close()).problems).toEqual([]);
    } finally {
      await world.xenstore.write("/tool/xenstored", "");
    }
  });

  it("where xenstored says it is oxenstored, open() resolves it to skip and cycles send no XS_RESUME", async () => {
    await world.xenstore.write("/tool/xenstored", "/usr/lib/xen-4.17/bin/oxenstored");
    try {
      const { s, domid } = await setup({ channel: "ok" }, { path: "evtchn+evtchn", xsResume: "auto" });
      await s.open();
      expect(s.xsResumeMode).toBe("skip");
      const t = await s.cycle();
      expect(t.xsResumeMs).toBe(0);
      expect((await s.close()).problems).toEqual([]);
      expectNothingHeld(domid);
    } finally {
      await world.xenstore.write("/tool/xenstored", "");
    }
  });
});

describe("signal guard and checkpoint loop", () => {
  it("on SIGINT during a checkpoint loop: the guest is left running, everything released", async () => {
    const { s, domid } = await setup({ suspendDelayMs: 5 }, { path: "xenstore+evtchn" });
    await s.open();
    const ac = new AbortController();
    const signals = new EventEmitter();
    let exitCode = -1;
    const closed = new Promise<void>((resolve) => {
      installSignalGuard(s, {
        source: signals,
        exit: (code) => { exitCode = code; resolve(); },
        onSignal: () => { ac.abort(); },
      });
    });
    const loop = new CheckpointRunner({ cycle: () => s.cycle(), intervalMs: 0, count: 100000, signal: ac.signal }).run();
    await new Promise((r) => setTimeout(r, 60));
    signals.emit("SIGINT", "SIGINT");
    await closed;
    const stats = await loop;
    expect(stats.stoppedBy).toBe("signal");
    expect(stats.ok).toBeGreaterThan(0);
    expect(exitCode).toBe(130);
    expect(world.domainState(domid)).toBe("running");
    expectNothingHeld(domid);
  });

  it("the guard resumes a suspended guest", async () => {
    const { s, domid } = await setup({}, { path: "xenstore+poll" });
    await s.open();
    await s.suspend();
    const signals = new EventEmitter();
    const done = new Promise<number>((resolve) => {
      installSignalGuard(s, { source: signals, exit: resolve });
    });
    signals.emit("SIGTERM", "SIGTERM");
    expect(await done).toBe(143);
    expect(world.domainState(domid)).toBe("running");
    expectNothingHeld(domid);
  });

  it("CheckpointRunner returns stats and stops at the first failure by default", async () => {
    const { s, domid } = await setup({}, { path: "xenstore+evtchn" });
    await s.open();
    const seen: string[] = [];
    const stats = await new CheckpointRunner({ cycle: () => s.cycle(), intervalMs: 1, count: 5, onCycle: (o, c) => seen.push(`${o.result} ${c.done}`) }).run();
    expect(stats).toMatchObject({ requested: 5, done: 5, ok: 5, failed: 0, skipped: 0, stoppedBy: "count" });
    expect(seen).toEqual(["ok 1", "ok 2", "ok 3", "ok 4", "ok 5"]);
    expect(stats.totalMs.n).toBe(5);
    guestOpts(domid).answersXenstore = false;
    const bad = await new CheckpointRunner({ cycle: () => s.cycle({ timeoutMs: 30 }), intervalMs: 1, count: 5 }).run();
    expect(bad).toMatchObject({ ok: 0, failed: 1, stoppedBy: "error" });
    expect(bad.errors[0]).toMatch(/did not suspend within 30 ms/);
    expect(world.domainState(domid)).toBe("running");
  });
});

describe("CheckpointRunner's hooks", () => {
  const timings = (totalMs: number): CycleTimings => ({ path: "xenstore+poll", triggerMs: 0, awaitMs: 0, confirmMs: 0, suspendMs: totalMs / 2, resumeMs: totalMs / 2, xsResumeMs: 0, totalMs });

  it("skipped cycles do not count toward the count; a failure budget stops the loop after that many failures in a row", async () => {
    const verdicts: CycleVerdict[] = [{ skip: "xl has it" }, { run: true }, { skip: "still xl" }, { run: true }, { run: true }, { run: true }, { run: true }];
    const results = ["ok", "fail", "ok", "fail", "fail"];
    const log: string[] = [];
    const stats = await new CheckpointRunner({
      intervalMs: 0,
      failureBudget: 2,
      around: async (f) => { log.push("in"); const r = await f(); log.push("out"); return r; },
      before: () => verdicts.shift() ?? { run: true },
      cycle: () => (results.shift() === "ok" ? Promise.resolve(timings(4)) : Promise.reject(new Error("boom"))),
      after: (o) => { log.push(`after ${o.result}`); },
    }).run();
    expect(stats).toMatchObject({ requested: null, done: 5, ok: 2, failed: 3, skipped: 2, lastSkip: "still xl", lastError: "boom", stoppedBy: "error" });
    expect(stats.errors).toEqual(["boom", "boom", "boom"]);
    expect(log.slice(0, 3)).toEqual(["in", "after skipped", "out"]);
    expect(log.filter((l) => l === "in")).toHaveLength(7);
  });

  it("a gone verdict or a failure because the domain ended stops it as gone; keepSamples bounds the summary", async () => {
    let n = 0;
    const gone = await new CheckpointRunner({ intervalMs: 0, keepSamples: 2, before: () => (++n > 3 ? { gone: "destroyed" } : { run: true }), cycle: () => Promise.resolve(timings(n)) }).run();
    expect(gone).toMatchObject({ ok: 3, stoppedBy: "gone" });
    expect(gone.samples.map((t) => t.totalMs)).toEqual([2, 3]);
    expect(gone.totalMs).toMatchObject({ n: 2, min: 2, max: 3 });
    const ended = await new CheckpointRunner({ intervalMs: 0, failureBudget: 10, cycle: () => Promise.reject(new CoordinatorError("EDYING", 5, "dying")) }).run();
    expect(ended).toMatchObject({ done: 1, failed: 1, stoppedBy: "gone" });
  });

  it("a cycle the signal interrupts is neither ok nor failed; the gap hook replaces the interval", async () => {
    const ac = new AbortController();
    const gaps: number[] = [];
    const stats = await new CheckpointRunner({
      intervalMs: 7,
      count: 10,
      signal: ac.signal,
      gap: (ms) => { gaps.push(ms); return Promise.resolve(); },
      cycle: () => {
        if (gaps.length === 2) { ac.abort(); return Promise.reject(new Error("interrupted")); }
        return Promise.resolve(timings(1));
      },
    }).run();
    expect(stats).toMatchObject({ done: 2, ok: 2, failed: 0, stoppedBy: "signal" });
    expect(gaps).toEqual([7, 7]);
  });
});

it("XenError from the binding is typed (sanity)", () => {
  expect(isXenError(new Error("x"))).toBe(false);
});

describe("the guest's suspend channel between operations (hold)", () => {
  /** What libxl's xc_suspend_evtchn_init_sane does first: bind the guest's advertised port. */
  function libxlCanBind(domid: number): boolean {
    const port = world.guests.get(domid)?.channelPort;
    if (port === undefined) throw new Error("guest has no channel");
    const h = world.binding().openEvtchn({ poll: false });
    try {
      h.unbind(h.bindInterdomain(domid, port));
      return true;
    } catch (err) {
      if (isXenError(err, "EINVAL")) return false;
      throw err;
    } finally {
      h.close();
    }
  }

  it('hold "operation" leaves the port unbound between cycles, so libxl can bind it ("session" keeps it)', async () => {
    const op = await setup({ channel: "ok" }, { path: "evtchn+poll", hold: "operation" });
    await op.s.open();
    expect(libxlCanBind(op.domid)).toBe(true);
    for (let i = 0; i < 3; i++) {
      await op.s.cycle();
      expect(libxlCanBind(op.domid)).toBe(true);
    }
    // Suspended and still suspended: nothing of ours is bound either.
    await op.s.suspend();
    expect(libxlCanBind(op.domid)).toBe(true);
    await op.s.resume();
    // A timed-out request also lets go of the binding.
    guestOpts(op.domid).answersChannel = false;
    await expect(op.s.suspend({ timeoutMs: 30 })).rejects.toBeInstanceOf(SuspendTimeoutError);
    expect(libxlCanBind(op.domid)).toBe(true);

    const ses = await setup({ channel: "ok" }, { path: "evtchn+poll" });
    await ses.s.open();
    await ses.s.cycle();
    expect(libxlCanBind(ses.domid)).toBe(false);
  });

  it('hold "operation" holds libxl\'s locks and the subscription only during each operation; the after-suspended step drops the subscription before the resume', async () => {
    const { s, domid } = await setup({ channel: "ok" }, { path: "evtchn+evtchn", hold: "operation" });
    const userdata = world.xen.toolstackLockPath(domid);
    const nothingOfOursInLibxlsWay = (): void => {
      expect(world.xen.suspendLockExists(domid)).toBe(false);
      expect(world.xen.suspendLocks.exists(userdata)).toBe(false);
      expect(world.subscription(domid)).toBe(0);
    };
    await s.open();
    nothingOfOursInLibxlsWay();
    const atResume: number[] = [];
    const lockedAtResume: boolean[] = [];
    world.guests.get(domid)?.guest.onResume(() => {
      atResume.push(world.subscription(domid));
      lockedAtResume.push(world.xen.suspendLockExists(domid));
    });
    for (let i = 0; i < 3; i++) {
      await s.cycle();
      nothingOfOursInLibxlsWay();
    }
    expect(atResume).toEqual([0, 0, 0]);
    expect(lockedAtResume).toEqual([true, true, true]);
    // Suspended and left so: the domain is free for libxl.
    await s.suspend();
    nothingOfOursInLibxlsWay();
    // libxl has it now: an operation is refused as open() refuses, and nothing is touched.
    const release = world.xen.holdSuspendLockElsewhere(domid);
    await expect(s.resume()).rejects.toMatchObject({ code: "ELOCKED" });
    expect(world.domainState(domid)).toBe("suspended");
    release();
    await s.resume();
    // A caller holding the locks across its own checks: the operation runs inside that hold.
    const locks = s.locks;
    if (locks === undefined) throw new Error("no locks with hold operation");
    locks.take();
    await s.cycle();
    expect(world.xen.suspendLockExists(domid)).toBe(true);
    expect(world.subscription(domid)).toBe(0);
    locks.park();
    expect(world.xen.suspendLockExists(domid)).toBe(false);
    expect(world.xen.suspendLocks.exists(userdata)).toBe(true);
    locks.release();
    nothingOfOursInLibxlsWay();
    await s.close();
    nothingOfOursInLibxlsWay();
    expectNothingHeld(domid);
  });

  it('hold "operation": close() while libxl holds the lock undoes what is ours and leaves a suspended domain alone', async () => {
    const { s, domid } = await setup({ channel: "ok" }, { path: "evtchn+evtchn", hold: "operation" });
    await s.open();
    await s.suspend();
    const release = world.xen.holdSuspendLockElsewhere(domid);
    const report = await s.close();
    expect(report.resumed).toBe(false);
    expect(report.problems.join("; ")).toMatch(/closed without the domain's locks/);
    expect(world.domainState(domid)).toBe("suspended");
    release();
    expect(world.subscription(domid)).toBe(0);
    expect(world.xen.suspendLocks.exists(world.xen.toolstackLockPath(domid))).toBe(false);
  });

  it.each(["session", "operation"] as const)("hold %s: a guest that renews its channel is followed (the path is set up again)", async (hold) => {
    const { s, domid } = await setup({ channel: "ok" }, { path: "evtchn+poll", hold });
    await s.open();
    await s.cycle();
    const newPort = await world.renewChannel(domid);
    expect(newPort).toBeDefined();
    // The first request after the renewal may fail (a notification to a closed peer is dropped,
    // or the old port cannot be bound): the session must see it and use the new port after that.
    await s.cycle({ timeoutMs: 50 }).catch((err: unknown) => {
      expect(err).toBeInstanceOf(CoordinatorError);
    });
    await s.cycle({ timeoutMs: 500 });
    await s.cycle({ timeoutMs: 500 });
    expect(world.domainState(domid)).toBe("running");
  });

  it("with fallback, a guest that withdraws its channel is served over xenstore", async () => {
    const { s, domid } = await setup({ channel: "ok" }, { path: "evtchn+poll", hold: "operation", fallback: true });
    await s.open();
    await s.cycle();
    await world.renewChannel(domid, { withdraw: true });
    await s.cycle({ timeoutMs: 200 }).catch(() => undefined);
    const t = await s.cycle({ timeoutMs: 500 });
    expect(t.path.startsWith("xenstore+")).toBe(true);
  });
});

it("a *+watch path works after libxl left the guest's port subscribed (xc_suspend_evtchn_release never unsubscribes)", async () => {
  const g = await world.addGuest({ channel: "ok" });
  // What `xl save -c` of a guest with a channel leaves behind: its channel subscribed, libxl gone.
  const xl = world.binding();
  const h = xl.openEvtchn({ poll: false });
  h.bindInterdomain(g.domid, g.channelPort ?? -1);
  xl.subscribeForSuspend(g.domid, g.channelPort ?? -1);
  h.close();
  expect(world.subscription(g.domid)).not.toBe(0);
  for (const path of ["xenstore+watch", "evtchn+watch"] as const) {
    const s = new SuspendSession(world.binding(), world.xenstore, g.domid, { path, defaultTimeoutMs: 500, lateSuspendGraceMs: 100 });
    sessions.push(s);
    await s.open();
    const t = await s.cycle();
    expect(t.path).toBe(path);
    await s.close();
  }
  expect(world.subscription(g.domid)).toBe(0);
});

describe("a timed-out request the guest acts on late (an event cannot be taken back)", () => {
  it("is remembered: resumeLateSuspend() resumes the late suspend, and a new suspend() would too", async () => {
    const { s, domid } = await setup({ channel: "ok", suspendDelayMs: 300 }, { path: "evtchn+poll" });
    await s.open();
    await expect(s.suspend({ timeoutMs: 30 })).rejects.toBeInstanceOf(SuspendTimeoutError);
    expect(s.outstandingRequest).toBe(true);
    expect(await s.resumeLateSuspend()).toBe(false); // still running: nothing to do yet
    for (let i = 0; i < 100 && world.domainState(domid) !== "suspended"; i++) await new Promise((r) => setTimeout(r, 10));
    expect(world.domainState(domid)).toBe("suspended");
    expect(await s.resumeLateSuspend()).toBe(true);
    expect(world.domainState(domid)).toBe("running");
    expect(s.outstandingRequest).toBe(false);
    // Again, then a new suspend(): it resumes our stray first and serves the new request.
    guestOpts(domid).suspendDelayMs = 300;
    await expect(s.suspend({ timeoutMs: 30 })).rejects.toBeInstanceOf(SuspendTimeoutError);
    for (let i = 0; i < 100 && world.domainState(domid) !== "suspended"; i++) await new Promise((r) => setTimeout(r, 10));
    guestOpts(domid).suspendDelayMs = 2;
    await s.suspend({ timeoutMs: 2000 });
    expect(s.state).toBe("suspended");
    expect(s.outstandingRequest).toBe(false);
    await s.resume();
  });

  it("close() keeps watching (bounded) and resumes a late suspend even without resumeIfSuspended", async () => {
    const { s, domid } = await setup({ channel: "ok", suspendDelayMs: 300 }, { path: "evtchn+poll", outstandingWaitMs: 2000 });
    await s.open();
    await expect(s.suspend({ timeoutMs: 30 })).rejects.toBeInstanceOf(SuspendTimeoutError);
    const r = await s.close({ resumeIfSuspended: false });
    expect(r).toMatchObject({ resumed: true, outstanding: false });
    expect(world.domainState(domid)).toBe("running");
  });

  it("close() says so when the request is still outstanding after the wait", async () => {
    const { s, domid } = await setup({ channel: "ok", suspendDelayMs: 5000 }, { path: "evtchn+poll", outstandingWaitMs: 50 });
    await s.open();
    await expect(s.suspend({ timeoutMs: 30 })).rejects.toBeInstanceOf(SuspendTimeoutError);
    const r = await s.close();
    expect(r).toMatchObject({ resumed: false, outstanding: true });
    expect(world.domainState(domid)).toBe("running");
  });
});

describe("the evtchn notification's port in the guest's table (dom0 cannot free it)", () => {
  const guestPorts = (domid: number): number => world.xen.hv.domains.get(domid)?.channels.size ?? -1;

  it("is reused by later sessions: 20 sessions allocate one port, not 20", async () => {
    const g = await world.addGuest();
    const before = guestPorts(g.domid);
    for (let i = 0; i < 20; i++) {
      const s = new SuspendSession(world.binding(), world.xenstore, g.domid, { path: "xenstore+evtchn", defaultTimeoutMs: 500 });
      await s.open();
      await s.cycle();
      await s.close();
    }
    expect(guestPorts(g.domid)).toBe(before + 1);
    expect(world.subscription(g.domid)).toBe(0);
  });

  it("a port the guest planted in the node (it owns its home) or its own suspend channel is never reused", async () => {
    const g = await world.addGuest({ channel: "ok" });
    const channel = g.channelPort ?? -1;
    /** The guest writes the node first (it owns its home), then a session opens and cycles. */
    const plantThenCycle = async (port: number): Promise<void> => {
      await world.xs.write(`/local/domain/${g.domid}/fastsuspend-notify-port`, String(port));
      await world.xs.setPermissions(`/local/domain/${g.domid}/fastsuspend-notify-port`, [{ domid: g.domid, access: "none" }]);
      const s = new SuspendSession(world.binding(), world.xenstore, g.domid, { path: "xenstore+evtchn", defaultTimeoutMs: 500 });
      sessions.push(s);
      await s.open();
      await s.cycle();
      await s.close();
    };
    // Pointing at its suspend channel: left to it, not bound.
    await plantThenCycle(channel);
    // Another port of the guest's for dom0 (a frontend's, waiting for its backend): not bound either.
    const frontend = g.guest.allocUnbound(0);
    await plantThenCycle(frontend);
    // libxl could still bind the guest's channel, the backend its port: we took neither.
    const h = world.binding().openEvtchn({ poll: false });
    expect(() => { h.unbind(h.bindInterdomain(g.domid, channel)); }).not.toThrow();
    expect(() => { h.unbind(h.bindInterdomain(g.domid, frontend)); }).not.toThrow();
    h.close();
  });
});

it("the fake hypervisor checks the suspend_notify cookie as the series does (UNREGISTER by port and cookie)", async () => {
  world.installHvNotify();
  const g = await world.addGuest();
  const xen = world.binding();
  const a = hvNotifyRegister(xen, g.domid, HV_NOTIFY_EV_ALL, 0);
  expect(a.cookie).not.toBe(0n);
  expect(() => { hvNotifyUnregister(xen, g.domid, a.port, 0n); }).toThrow(/EINVAL/);
  expect(() => { hvNotifyUnregister(xen, g.domid, a.port, a.cookie + 1n); }).toThrow(/ENOENT/);
  expect(world.hvRegistrations(g.domid)).toBe(1);
  hvNotifyUnregister(xen, g.domid, a.port, a.cookie);
  expect(world.hvRegistrations(g.domid)).toBe(0);
});

// The whole daemon over a real unix socket, on the coordinator's fake Xen host.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { FakeWorld, type FakeWorldGuest } from "@fastsuspend/coordinator/testing";
import type { SuspendLock } from "@fastsuspend/xen";

import { assertRoot, DaemonClient, isDaemonError, Journal, startService, type LoopStatus, type RunningService } from "../src";

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let world: FakeWorld;
let dir: string;
let svc: RunningService | undefined;
const clients: DaemonClient[] = [];

let xlAt: { domid: number; what: string } | undefined;

/** Domains the toolstack check (the /proc scan stand-in) was asked about, in order. */
let scanned: number[] = [];

async function start(
  extra: { keptLoopRetry?: { everyMs: number; forMs: number }; idleMs?: number; maxLineBytes?: number; maxRequestHoldMs?: number; toolstackCooldownMs?: number; toolstackUser?: (d: number) => Promise<string | undefined> | string | undefined; log?: (line: string) => void } = {},
): Promise<RunningService> {
  xlAt = undefined;
  scanned = [];
  const toolstackUser = (d: number): string | undefined => {
    scanned.push(d);
    return xlAt?.domid === d ? xlAt.what : undefined;
  };
  // No cool-down after another tool by default here: the tests time the hand-back in tens of ms.
  svc = await startService({ xen: world.binding(), xs: world.xenstore, runDir: dir, session: { defaultTimeoutMs: 1000, lateSuspendGraceMs: 100 }, toolstackUser, toolstackCooldownMs: 0, ...extra });
  return svc;
}

async function client(): Promise<DaemonClient> {
  const c = await DaemonClient.connect({ socketPath: join(dir, "daemon.sock"), timeoutMs: 5000 });
  clients.push(c);
  return c;
}

/** Takes the domain's suspend lock from another binding, as xl would: retried until the daemon hands over. */
async function takeLockAsXl(domid: number): Promise<SuspendLock | undefined> {
  const xl = world.binding();
  for (let i = 0; i < 100; i++) {
    try {
      return xl.lockSuspend(domid);
    } catch {
      await sleep(1);
    }
  }
  return undefined;
}

/** The journal's entries ("domid:reason") as the guest sees each resume: what a crash then would leave. */
function journalAtEachResume(s: RunningService, g: FakeWorldGuest): string[][] {
  const seen: string[][] = [];
  g.guest.onResume(() => {
    seen.push(s.daemon.journal.entries().map((e) => `${e.domid}:${e.reason}`));
  });
  return seen;
}

/** The checkpoint loop's status of a domain, as `status` reports it. */
async function loopOf(c: DaemonClient, domid: number): Promise<LoopStatus> {
  const { loop } = await c.request("status", { domid });
  if (loop === null) throw new Error(`no loop on domain ${domid}`);
  return loop;
}

async function errorOf(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (err) {
    if (isDaemonError(err)) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error("expected an error");
}

/** Sends raw bytes on a fresh connection; collects response lines until `n` arrived or the socket closed. */
function raw(text: string, n: number): Promise<{ lines: { id: unknown; ok: boolean; error?: { code: string; message: string } }[]; closed: boolean }> {
  return new Promise((resolve) => {
    const sock = createConnection(join(dir, "daemon.sock"));
    let buf = "";
    const lines: { id: unknown; ok: boolean; error?: { code: string; message: string } }[] = [];
    let closed = false;
    const done = (): void => {
      sock.destroy();
      resolve({ lines, closed });
    };
    sock.on("data", (d: Buffer) => {
      buf += d.toString();
      for (let i = buf.indexOf("\n"); i >= 0; i = buf.indexOf("\n")) {
        lines.push(JSON.parse(buf.slice(0, i)) as (typeof lines)[number]);
        buf = buf.slice(i + 1);
      }
      if (lines.length >= n) setTimeout(done, 50);
    });
    sock.on("close", () => {
      closed = true;
      done();
    });
    sock.on("error", () => undefined);
    sock.write(text);
  });
}

beforeEach(async () => {
  world = await FakeWorld.create();
  dir = mkdtempSync(join(tmpdir(), "fsd-svc-"));
});
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await svc?.stop();
  svc = undefined;
  await world.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("fastsuspendd on the fake host", () => {
  it("serves suspend and resume; the socket is mode 0600; stop removes the socket and pid file", async () => {
    const s = await start();
    const g = await world.addGuest();
    expect(statSync(join(dir, "daemon.sock")).mode & 0o777).toBe(0o600);
    const c = await client();
    const r = await c.request("suspend", { domid: g.domid });
    expect(r.domid).toBe(g.domid);
    expect(r.path).toBe("xenstore+evtchn");
    expect(world.domainState(g.domid)).toBe("suspended");
    // Between requests the domain is libxl's: lock free, no subscription.
    expect(world.xen.suspendLockExists(g.domid)).toBe(false);
    expect(world.subscription(g.domid)).toBe(0);
    expect(await errorOf(c.request("suspend", { domid: g.domid }))).toMatchObject({ code: "ESUSPENDED", message: expect.stringContaining("already suspended") as unknown });
    const st = await c.request("status", { domid: g.domid });
    expect(st).toMatchObject({ state: "suspended", pathsInUse: ["xenstore+evtchn"], session: { state: "suspended" } });
    await c.request("resume", { domid: g.domid });
    expect(world.domainState(g.domid)).toBe("running");
    expect(await errorOf(c.request("resume", { domid: g.domid }))).toMatchObject({ code: "ENOTSUSPENDED" });
    await s.stop();
    svc = undefined;
    expect(existsSync(join(dir, "daemon.sock"))).toBe(false);
    expect(existsSync(join(dir, "daemon.pid"))).toBe(false);
    expect(world.boundPorts()).toBe(0);
  });

  it("a request with another path replaces the warm session; the new one gets the lock and its events", async () => {
    await start();
    const g = await world.addGuest();
    const c = await client();
    await c.request("checkpoint.start", { domid: g.domid, intervalMs: 0, count: 2 });
    for (let i = 0; i < 100 && (await loopOf(c, g.domid)).running; i++) await sleep(10);
    const r = await c.request("suspend", { domid: g.domid, path: "xenstore+watch" });
    expect(r.path).toBe("xenstore+watch");
    await c.request("resume", { domid: g.domid });
    const r2 = await c.request("suspend", { domid: g.domid, path: "xenstore+evtchn", timeoutMs: 500 });
    expect(r2.path).toBe("xenstore+evtchn");
    await c.request("resume", { domid: g.domid });
    expect(world.xen.suspendLockExists(g.domid)).toBe(false);
    expect(world.subscription(g.domid)).toBe(0);
    expect(world.domainState(g.domid)).toBe("running");
  });

  it("unknown domain, dom0, a crashed domain and a second daemon get clear errors, each its own code", async () => {
    await start();
    const c = await client();
    expect(await errorOf(c.request("suspend", { domid: 77 }))).toMatchObject({ code: "ENODOMAIN", message: expect.stringContaining("no domain 77") as unknown });
    expect(await errorOf(c.request("status", { domid: 77 }))).toMatchObject({ code: "ENODOMAIN" });
    expect(await errorOf(c.request("suspend", { domid: 0 }))).toMatchObject({ code: "ECONTROLDOMAIN", message: expect.stringContaining("control domain") as unknown });
    const crashed = await world.addGuest();
    world.xen.guest(crashed.domid).crash();
    expect(await errorOf(c.request("suspend", { domid: crashed.domid }))).toMatchObject({ code: "EDOMAIN", message: expect.stringContaining("shut down (crash)") as unknown });
    expect(await errorOf(c.request("checkpoint", { domid: crashed.domid, intervalMs: 0 }))).toMatchObject({ code: "EDOMAIN" });
    const second = await errorOf(startService({ xen: world.binding(), xs: world.xenstore, runDir: dir }));
    expect(second).toMatchObject({ code: "EBUSY", message: expect.stringContaining("another fastsuspendd is running") as unknown });
    // The first still answers.
    expect(await c.request("metrics")).toEqual(expect.stringContaining("fastsuspend_requests_total"));
  });

  it("refuses to start as non-root unless allowed", () => {
    expect(() => { assertRoot(() => 1000, false); }).toThrow(/must run as root \(uid 1000\)/);
    expect(() => { assertRoot(() => 1000, true); }).not.toThrow();
    expect(() => { assertRoot(() => 0, false); }).not.toThrow();
  });

  it("runs a checkpoint loop to its count, warm session reused, with status and metrics", async () => {
    await start();
    const g = await world.addGuest();
    const c = await client();
    const portsBefore = world.boundPorts();
    const started = await c.request("checkpoint.start", { domid: g.domid, intervalMs: 5, count: 8 });
    expect(started).toMatchObject({ started: true, path: "xenstore+evtchn" });
    const portsWarm = world.boundPorts();
    expect(portsWarm).toBeGreaterThan(portsBefore);
    expect(await errorOf(c.request("checkpoint.start", { domid: g.domid, intervalMs: 5 }))).toMatchObject({ code: "EBUSY" });
    expect(await errorOf(c.request("suspend", { domid: g.domid }))).toMatchObject({ code: "EBUSY", message: expect.stringContaining("checkpoint loop") as unknown });
    let loop: LoopStatus | null = null;
    for (let i = 0; i < 200; i++) {
      loop = (await c.request("status", { domid: g.domid })).loop;
      if (loop?.running === false) break;
      await sleep(20);
    }
    expect(loop).toMatchObject({ running: false, done: 8, ok: 8, failed: 0, stoppedBy: "count" });
    expect(world.domainState(g.domid)).toBe("running");
    expect(world.boundPorts()).toBe(portsWarm); // same channels all along
    const st = await c.request("status", { domid: g.domid });
    expect(st.rolling.cycleMs.n).toBe(8);
    expect(st.rolling.cycleMs.p99).toBeGreaterThan(0);
    expect(st.last?.op).toBe("cycle");
    expect([loop?.cycleMs.n, loop?.suspendMs.n]).toEqual([8, 8]);
    // A second loop's summary holds its own cycles only; the domain's rolling window holds both.
    await c.request("checkpoint.start", { domid: g.domid, intervalMs: 0, count: 3 });
    for (let i = 0; i < 200 && (loop?.running !== false || loop.done !== 3); i++) {
      await sleep(10);
      loop = (await c.request("status", { domid: g.domid })).loop;
    }
    const st2 = await c.request("status", { domid: g.domid });
    expect([st2.loop?.cycleMs.n, st2.loop?.suspendMs.n, st2.rolling.cycleMs.n]).toEqual([3, 3, 11]);
    const m = await c.request("metrics");
    expect(m).toContain(`fastsuspend_checkpoint_cycles_total{domain="",domid="${g.domid}",result="ok"} 11`);
    expect(m).toContain('fastsuspend_checkpoint_cycle_seconds_count{path="xenstore+evtchn"} 11');
    expect(m).toContain('fastsuspend_checkpoint_cycle_seconds_bucket{path="xenstore+evtchn",le="+Inf"} 11');
    expect(m).toContain("fastsuspend_checkpoint_loops_running 0");
    expect(m).toMatch(/fastsuspend_sessions_open 1\n/);
  });

  it("hands the domain over between cycles: another holder of the lock makes cycles skip, not fail; then it resumes", async () => {
    await start();
    const g = await world.addGuest();
    const c = await client();
    await c.request("checkpoint.start", { domid: g.domid, intervalMs: 10 });
    await sleep(100);
    // "xl save" (another process) takes the lock between two cycles: the daemon must let it.
    const lock = await takeLockAsXl(g.domid);
    expect(lock).toBeDefined();
    expect(world.subscription(g.domid)).toBe(0); // VIRQ_DOM_EXC goes to xenstored while xl has it
    const before = await loopOf(c, g.domid);
    await sleep(150);
    const during = await loopOf(c, g.domid);
    expect(during.ok).toBe(before.ok);
    expect(during.skipped).toBeGreaterThan(before.skipped);
    expect(during.failed).toBe(0);
    expect(during.lastSkip).toMatch(/lock held by another process/);
    lock?.release();
    await sleep(150);
    const after = await loopOf(c, g.domid);
    expect(after.ok).toBeGreaterThan(during.ok);
    const stopped = await c.request("checkpoint.stop", { domid: g.domid });
    expect(stopped.loop).toMatchObject({ running: false, stoppedBy: "request", failed: 0 });
    expect(world.domainState(g.domid)).toBe("running");
    expect(await errorOf(c.request("checkpoint.stop", { domid: g.domid }))).toMatchObject({ code: "ENOLOOP" });
  });

  it("each cycle drops its subscription before resuming (a request queued meanwhile by xl is reported to xenstored)", async () => {
    await start();
    const g = await world.addGuest();
    const c = await client();
    const atResume: number[] = [];
    g.guest.onResume(() => {
      atResume.push(world.subscription(g.domid));
    });
    await c.request("checkpoint.start", { domid: g.domid, intervalMs: 0, count: 5 });
    for (let i = 0; i < 100 && (await loopOf(c, g.domid)).running; i++) await sleep(10);
    expect(atResume).toEqual([0, 0, 0, 0, 0]);
  });

  it("a skipped cycle never subscribes: a suspend another tool causes meanwhile reaches xenstored", async () => {
    await start();
    const g = await world.addGuest();
    const c = await client();
    await c.request("checkpoint.start", { domid: g.domid, intervalMs: 2 });
    await sleep(40);
    xlAt = { domid: g.domid, what: "xl save" };
    await sleep(20); // the cycle in flight ends
    const seen: number[] = [];
    const t = setInterval(() => seen.push(world.subscription(g.domid)), 1);
    await sleep(100);
    clearInterval(t);
    const st = await loopOf(c, g.domid);
    expect(st.lastSkip).toMatch(/toolstack/);
    expect(seen.length).toBeGreaterThan(20);
    expect(seen.filter((p) => p !== 0)).toEqual([]);
    await c.request("checkpoint.stop", { domid: g.domid });
  });

  it("a domain suspended by another tool is skipped, not resumed behind its back", async () => {
    await start();
    const g = await world.addGuest();
    const c = await client();
    await c.request("checkpoint.start", { domid: g.domid, intervalMs: 10 });
    await sleep(60);
    // Suspend it as xl would, between cycles (wait for the daemon to hand over first).
    const lock = await takeLockAsXl(g.domid);
    g.guest.suspend();
    lock?.release();
    await sleep(100);
    expect(world.domainState(g.domid)).toBe("suspended");
    const st = await loopOf(c, g.domid);
    expect(st.lastSkip).toMatch(/suspended by another tool/);
    world.xen.binding(0).resume(g.domid, true);
    await sleep(80);
    const st2 = await loopOf(c, g.domid);
    expect(st2.ok).toBeGreaterThan(st.ok);
    await c.request("checkpoint.stop", { domid: g.domid });
  });

  it("a request another tool left pending in control/shutdown (xl save of a channel-less guest) makes cycles skip and suspend refuse", async () => {
    await start();
    const g = await world.addGuest({ answersXenstore: false });
    const c = await client();
    await world.xenstore.write(`/local/domain/${g.domid}/control/shutdown`, "suspend");
    expect(await errorOf(c.request("suspend", { domid: g.domid }))).toMatchObject({ code: "EBUSY", message: expect.stringContaining("pending") as unknown });
    await c.request("checkpoint.start", { domid: g.domid, intervalMs: 5 });
    await sleep(80);
    const st = await loopOf(c, g.domid);
    expect(st).toMatchObject({ ok: 0, failed: 0 });
    expect(st.skipped).toBeGreaterThan(0);
    expect(st.lastSkip).toMatch(/pending in control\/shutdown \("suspend"\)/);
    await c.request("checkpoint.stop", { domid: g.domid });
    expect(world.domainState(g.domid)).toBe("running");
  });

  it("while xl works on the domain (its process seen), cycles are skipped and suspend refused", async () => {
    await start();
    const g = await world.addGuest();
    const c = await client();
    await c.request("checkpoint.start", { domid: g.domid, intervalMs: 5 });
    await sleep(60);
    xlAt = { domid: g.domid, what: "xl (pid 42): save -c 1 /dev/null" };
    await sleep(30);
    const a = await loopOf(c, g.domid);
    await sleep(80);
    const b = await loopOf(c, g.domid);
    expect(b.ok).toBe(a.ok);
    expect(b.skipped).toBeGreaterThan(a.skipped);
    expect(b.lastSkip).toBe("the toolstack is working on it: xl (pid 42): save -c 1 /dev/null");
    xlAt = undefined;
    await sleep(80);
    expect((await loopOf(c, g.domid)).ok).toBeGreaterThan(b.ok);
    await c.request("checkpoint.stop", { domid: g.domid });
  });

  it("a guest with a suspend channel is scanned too: an xl started before our cycle is seen, and the cycle skipped instead of holding the lock xl is about to take", async () => {
    // The defect: the scan was skipped for such guests (libxl takes the suspend lock for them), but
    // libxl's lock is a non-blocking F_SETLK, so an xl reaching it during our cycle failed at once.
    await start();
    const g = await world.addGuest({ channel: "ok" });
    const plain = await world.addGuest();
    const c = await client();
    await c.request("checkpoint.start", { domid: g.domid, intervalMs: 0, count: 6 });
    await c.request("checkpoint.start", { domid: plain.domid, intervalMs: 0, count: 6 });
    for (let i = 0; i < 200; i++) {
      const [a, b] = await Promise.all([g, plain].map((x) => c.request("status", { domid: x.domid })));
      if (a?.loop?.running === false && b?.loop?.running === false) break;
      await sleep(10);
    }
    expect(scanned.filter((d) => d === g.domid)).toHaveLength(6);
    expect(scanned.filter((d) => d === plain.domid)).toHaveLength(6);
    expect(await c.request("metrics")).toContain('fastsuspend_toolstack_checks_total{how="scan"} 12');
    xlAt = { domid: g.domid, what: "xl (pid 7): save -c 1 /dev/null" };
    await c.request("checkpoint.start", { domid: g.domid, intervalMs: 0, count: 2 });
    await sleep(50);
    const st = await loopOf(c, g.domid);
    expect(st).toMatchObject({ ok: 0, failed: 0 });
    expect(st.lastSkip).toBe("the toolstack is working on it: xl (pid 7): save -c 1 /dev/null");
    await c.request("checkpoint.stop", { domid: g.domid });
  });

  it("a loop keeps libxl's userdata lock between cycles and hands the domain over when libxl queues on it; it stays off while libxl holds either lock", async () => {
    // Issue 15 finding 1: xl save -c failed at libxenguest's non-blocking suspend lock when it met
    // one of our cycles. xl reads the domain's configuration under the userdata lock (waiting for
    // it) before it tries the suspend lock: holding the former keeps xl from racing us to the latter.
    await start({ toolstackCooldownMs: 200 });
    const g = await world.addGuest({ channel: "ok" });
    const c = await client();
    const userdata = world.xen.toolstackLockPath(g.domid);
    await c.request("checkpoint.start", { domid: g.domid, intervalMs: 50 });
    for (let i = 0; i < 400 && (await loopOf(c, g.domid)).ok < 2; i++) await sleep(5);
    // Between cycles: the userdata lock is ours, the suspend lock free.
    for (let i = 0; i < 200 && world.xen.suspendLockExists(g.domid); i++) await sleep(1);
    expect(world.xen.suspendLocks.exists(userdata)).toBe(true);
    expect(() => world.xen.holdToolstackLockElsewhere(g.domid)).toThrow(/EAGAIN/);
    // libxl queues on it (xl save reading the configuration): the daemon lets go of both locks.
    const giveUp = world.xen.waitForToolstackLock(g.domid);
    for (let i = 0; i < 200 && world.xen.suspendLocks.exists(userdata); i++) await sleep(2);
    giveUp();
    expect(world.xen.suspendLocks.exists(userdata)).toBe(false);
    expect(world.xen.suspendLockExists(g.domid)).toBe(false);
    // xl gets the userdata lock, then (its configuration read) the suspend lock, for a while.
    const ok = (await loopOf(c, g.domid)).ok;
    const letGoUserdata = world.xen.holdToolstackLockElsewhere(g.domid);
    await sleep(100);
    letGoUserdata();
    const letGoSuspend = world.xen.holdSuspendLockElsewhere(g.domid);
    await sleep(400); // twice the cool-down: the suspend lock keeps the daemon off
    expect((await loopOf(c, g.domid)).ok).toBe(ok);
    letGoSuspend();
    let st = await loopOf(c, g.domid);
    for (let i = 0; i < 400 && st.ok < ok + 2; i++) {
      await sleep(5);
      st = await loopOf(c, g.domid);
    }
    expect(st.ok).toBeGreaterThanOrEqual(ok + 2);
    expect(st.failed).toBe(0);
    expect(st.skipped).toBeGreaterThan(0);
    expect(svc?.daemon.metrics.handovers.get()).toBeGreaterThan(0);
    await c.request("checkpoint.stop", { domid: g.domid });
    // Stopped: nothing of ours held.
    expect(world.xen.suspendLocks.exists(userdata)).toBe(false);
    expect(world.xen.suspendLockExists(g.domid)).toBe(false);
  });

  it("after a cycle skipped for another tool, cycles keep skipping for the cool-down (xl save run twice in a row meets no cycle of ours)", async () => {
    await start({ toolstackCooldownMs: 300 });
    const g = await world.addGuest({ channel: "ok" });
    const c = await client();
    await c.request("checkpoint.start", { domid: g.domid, intervalMs: 5 });
    for (let i = 0; i < 200 && (await loopOf(c, g.domid)).ok < 2; i++) await sleep(5);
    xlAt = { domid: g.domid, what: "xl (pid 9): save -c 1 /dev/null" };
    for (let i = 0; i < 200 && (await loopOf(c, g.domid)).skipped === 0; i++) await sleep(5);
    xlAt = undefined; // xl is gone: the next xl may start any moment
    const ok = (await loopOf(c, g.domid)).ok;
    await sleep(150);
    const mid = await loopOf(c, g.domid);
    expect(mid.ok).toBeLessThanOrEqual(ok + 1); // at most the cycle in flight
    expect(mid.lastSkip).toMatch(/^cooling down: another tool had the domain \d+ ms ago/);
    for (let i = 0; i < 200 && (await loopOf(c, g.domid)).ok <= mid.ok; i++) await sleep(10);
    expect((await loopOf(c, g.domid)).ok).toBeGreaterThan(mid.ok); // and then it carries on
    await c.request("checkpoint.stop", { domid: g.domid });
  });

  it("status and metrics from many clients never run while a cycle (or its checks) is in flight", async () => {
    const s = await start({
      maxRequestHoldMs: 10_000,
      toolstackUser: async () => {
        // A slow check that awaits often, like the /proc scan: no request may be answered meanwhile.
        const before = s.server.answered;
        for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
        during.push(s.server.answered - before);
        return undefined;
      },
    });
    const during: number[] = [];
    const g = await world.addGuest();
    const ctl = await client();
    const cs = await Promise.all(Array.from({ length: 8 }, () => client()));
    let stop = false;
    let answered = 0;
    const pollers = cs.map(async (c, i) => {
      for (let k = 0; !stop; k++) {
        await ((i + k) % 2 === 0 ? c.request("metrics") : c.request("status", { domid: g.domid }));
        answered++;
      }
    });
    await ctl.request("checkpoint.start", { domid: g.domid, intervalMs: 2, count: 10 });
    let loop: LoopStatus | null = null;
    for (let i = 0; i < 300 && loop?.running !== false; i++) {
      await sleep(10);
      loop = await loopOf(ctl, g.domid);
    }
    stop = true;
    await Promise.all(pollers);
    expect(loop).toMatchObject({ running: false, ok: 10, failed: 0 });
    expect(during).toHaveLength(10);
    expect(during).toEqual(Array.from({ length: 10 }, () => 0));
    expect(answered).toBeGreaterThan(8); // answered between the cycles
    expect(s.daemon.gate.held).toBeGreaterThan(0);
    expect(await ctl.request("metrics")).toMatch(/fastsuspend_requests_held_total\{released="after-work"\} [1-9]/);
  });

  it("a request held by a long cycle is answered after maxRequestHoldMs anyway", async () => {
    const s = await start({ maxRequestHoldMs: 50 });
    const g = await world.addGuest({ suspendDelayMs: 400 });
    const c = await client();
    await c.request("checkpoint.start", { domid: g.domid, intervalMs: 0, count: 1 });
    await sleep(30); // the cycle waits for the guest's 400 ms
    expect(s.daemon.gate.active).toBe(1);
    const t0 = Date.now();
    const st = await c.request("status", { domid: g.domid });
    const ms = Date.now() - t0;
    expect(st.loop).toMatchObject({ running: true, ok: 0 });
    expect(ms).toBeGreaterThanOrEqual(40);
    expect(ms).toBeLessThan(300);
    expect(s.daemon.gate.releasedByLimit).toBe(1);
    await c.request("checkpoint.stop", { domid: g.domid });
  });

  it("malformed, unknown and oversized requests are refused; the daemon keeps serving", async () => {
    await start({ maxLineBytes: 1024 });
    const r = await raw('{bad json\n{"id":1,"op":"explode"}\n{"id":2,"op":"status","domid":"x"}\n\n{"id":3,"op":"metrics"}\n', 4);
    expect(r.lines.map((l) => [l.id, l.ok, l.error?.code])).toEqual([
      [null, false, "EPARSE"],
      [1, false, "EUNKNOWNOP"],
      [2, false, "EINVAL"],
      [3, true, undefined],
    ]);
    expect(r.closed).toBe(false);
    const big = await raw(`{"id":9,"op":"status","pad":"${"x".repeat(5000)}"}\n{"id":10,"op":"metrics"}\n`, 1);
    expect(big.lines).toHaveLength(1);
    expect(big.lines[0]).toMatchObject({ id: null, ok: false, error: { code: "ETOOBIG" } });
    expect(big.closed).toBe(true);
    // No newline at all: refused as soon as the buffer passes the cap.
    const endless = await raw("x".repeat(3000), 1);
    expect(endless.lines[0]?.error?.code).toBe("ETOOBIG");
    expect(endless.closed).toBe(true);
    const c = await client();
    const m = await c.request("metrics");
    expect(m).toContain('fastsuspend_request_errors_total{op="none",code="ETOOBIG"} 2');
    expect(m).toContain('fastsuspend_request_errors_total{op="none",code="EPARSE"} 1');
  });

  it("serves many clients at once while one domain's work is serialised", async () => {
    await start();
    const g1 = await world.addGuest();
    const g2 = await world.addGuest();
    const cs = await Promise.all(Array.from({ length: 12 }, () => client()));
    // Two suspends of the same domain at once: exactly one wins, the other sees it suspended.
    const [c0, c1, c2] = cs as [DaemonClient, DaemonClient, DaemonClient];
    const [a, b] = await Promise.allSettled([c0.request("suspend", { domid: g1.domid }), c1.request("suspend", { domid: g1.domid })]);
    expect([a.status, b.status].sort()).toEqual(["fulfilled", "rejected"]);
    const polls = await Promise.all(cs.flatMap((c) => [c.request("status"), c.request("metrics"), c.request("status", { domid: g2.domid })]));
    expect(polls).toHaveLength(36);
    const all = polls[0] as { domains: { domid: number; state: string }[] };
    expect(all.domains.map((d) => [d.domid, d.state])).toEqual([
      [g1.domid, "suspended"],
      [g2.domid, "running"],
    ]);
    await c2.request("resume", { domid: g1.domid });
    expect(world.domainState(g1.domid)).toBe("running");
  });

  it("journal: a domain left suspended by a crashed daemon is resumed at the next start, its subscription reset", async () => {
    const g = await world.addGuest();
    const other = await world.addGuest();
    // What a daemon killed mid-cycle leaves: the guest suspended, a subscription to a dead port, a journal and a pid file.
    const dead = world.binding();
    const port = dead.allocUnbound(g.domid, 0);
    dead.subscribeForSuspend(g.domid, port);
    g.guest.suspend();
    other.guest.suspend(); // not ours: not journalled, must stay suspended
    writeFileSync(join(dir, "journal.json"), JSON.stringify({ version: 1, entries: [{ domid: g.domid, reason: "checkpoint", since: "x", pid: 1 }, { domid: 4242, reason: "checkpoint", since: "x", pid: 1 }] }));
    writeFileSync(join(dir, "daemon.pid"), "999999\n");
    const s = await start();
    expect(s.recovery.map((a) => [a.domid, a.action, a.unsubscribed])).toEqual([
      [g.domid, "resumed", true],
      [4242, "gone", false],
    ]);
    expect(s.pidLock.replacedStale).toBe(999999);
    expect(world.domainState(g.domid)).toBe("running");
    expect(world.subscription(g.domid)).toBe(0);
    expect(world.domainState(other.domid)).toBe("suspended");
    expect(s.daemon.journal.entries()).toEqual([]);
  });

  it("journal lists a loop's domain during its cycles; stop (SIGTERM path) ends the loop with the guest running, within a second", async () => {
    const s = await start();
    const g = await world.addGuest({ suspendDelayMs: 20 });
    const c = await client();
    await c.request("checkpoint.start", { domid: g.domid, intervalMs: 0 });
    // The journal holds an entry only during a cycle (between the trigger and the resume), so
    // sample it until a cycle is in flight instead of at a fixed time, which under load could
    // fall between two cycles.
    let seen: [number, string][] = [];
    for (let i = 0; i < 400 && seen.length === 0; i++) {
      seen = s.daemon.journal.entries().map((e) => [e.domid, e.reason]);
      if (seen.length === 0) await sleep(2);
    }
    expect(seen).toEqual([[g.domid, "checkpoint"]]);
    const t0 = Date.now();
    await s.stop();
    svc = undefined;
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(world.domainState(g.domid)).toBe("running");
    expect(world.subscription(g.domid)).toBe(0);
    expect(world.xen.suspendLockExists(g.domid)).toBe(false);
    expect(world.boundPorts()).toBe(0);
    expect(existsSync(join(dir, "journal.json"))).toBe(false);
  });

  it("journals each cycle (entry added right before the trigger, removed once resumed), nothing between cycles", async () => {
    const s = await start();
    const g = await world.addGuest({ suspendDelayMs: 5 });
    const c = await client();
    const atResume = journalAtEachResume(s, g);
    await c.request("checkpoint.start", { domid: g.domid, intervalMs: 150, count: 3 });
    for (let i = 0; i < 100 && atResume.length < 1; i++) await sleep(5);
    await sleep(30); // in the interval after the first cycle
    expect(await loopOf(c, g.domid)).toMatchObject({ running: true, ok: 1 });
    expect(s.daemon.journal.entries()).toEqual([]);
    expect(existsSync(join(dir, "journal.json")) ? (JSON.parse(readFileSync(join(dir, "journal.json"), "utf8")) as { entries: unknown[] }).entries : []).toEqual([]);
    for (let i = 0; i < 200 && (await loopOf(c, g.domid)).running; i++) await sleep(10);
    expect(atResume).toEqual([0, 1, 2].map(() => [`${g.domid}:checkpoint`]));
    expect(s.daemon.journal.entries()).toEqual([]);
  });

  it("recovery leaves alone a journalled domain an xl process may be copying, and logs why; one with xl's request pending is resumed (xl waits for its ack)", async () => {
    const stock = await world.addGuest({ answersXenstore: false });
    const migrating = await world.addGuest();
    const ours = await world.addGuest();
    const dead = world.binding();
    for (const g of [stock, migrating, ours]) {
      dead.subscribeForSuspend(g.domid, dead.allocUnbound(g.domid, 0));
      g.guest.suspend(); // suspended by the daemon that was killed mid-cycle
    }
    // Then `xl save` of the stock guest (no suspend channel: no lock) wrote its request and found it suspended.
    await world.xenstore.write(`/local/domain/${stock.domid}/control/shutdown`, "suspend");
    const entries = [stock, migrating, ours].map((g) => ({ domid: g.domid, reason: "checkpoint", since: "x", pid: 1 }));
    writeFileSync(join(dir, "journal.json"), JSON.stringify({ version: 1, entries }));
    const logs: string[] = [];
    const s = await start({ log: (l) => logs.push(l), toolstackUser: (d) => (d === migrating.domid ? "xl (pid 9): migrate 5 otherhost" : undefined) });
    expect(s.recovery.map((a) => [a.domid, a.action, a.unsubscribed])).toEqual([
      [stock.domid, "resumed", true],
      [migrating.domid, "left-alone", true],
      [ours.domid, "resumed", true],
    ]);
    // xl's request is still there for the guest to serve now that it runs (libxl waits for its ack).
    expect(world.domainState(stock.domid)).toBe("running");
    expect(await world.xenstore.tryReadString(`/local/domain/${stock.domid}/control/shutdown`)).toBe("suspend");
    expect(world.domainState(migrating.domid)).toBe("suspended");
    expect(world.domainState(ours.domid)).toBe("running");
    expect(logs.join("\n")).toMatch(new RegExp(`recovery: domain ${stock.domid}: resumed.*pending in control/shutdown`));
    expect(logs.join("\n")).toMatch(new RegExp(`recovery: domain ${migrating.domid}: left-alone.*xl \\(pid 9\\): migrate`));
    expect(s.daemon.journal.entries()).toEqual([]);
  });

  it("resume of a domain suspended by another tool (no session) refuses while that tool may be copying it (its lock, its process)", async () => {
    await start();
    const g = await world.addGuest();
    const c = await client();
    g.guest.suspend(); // e.g. xl save of a stock guest, memory being copied
    const lock = world.binding().lockSuspend(g.domid);
    expect(await errorOf(c.request("resume", { domid: g.domid }))).toMatchObject({ code: "EBUSY", message: expect.stringContaining("lock") as unknown });
    lock.release();
    xlAt = { domid: g.domid, what: "xl (pid 5): migrate 3 otherhost" };
    expect(await errorOf(c.request("resume", { domid: g.domid }))).toMatchObject({ code: "EBUSY", message: expect.stringContaining("xl (pid 5)") as unknown });
    expect(world.domainState(g.domid)).toBe("suspended");
    // Its request pending: xl waits for the guest's ack and copies nothing before: resuming lets it go on.
    await world.xenstore.write(`/local/domain/${g.domid}/control/shutdown`, "suspend");
    await c.request("resume", { domid: g.domid });
    expect(world.domainState(g.domid)).toBe("running");
  });

  it("stop does not resume a journalled domain an xl process may be copying (the entry is kept for the next start)", async () => {
    const logs: string[] = [];
    const s = await start({ log: (l) => logs.push(l) });
    const g = await world.addGuest();
    g.guest.suspend();
    xlAt = { domid: g.domid, what: "xl (pid 8): save 2 /tmp/img" };
    s.daemon.journal.add(g.domid, "checkpoint"); // as a cycle that failed with the guest suspended leaves it
    await s.stop();
    svc = undefined;
    expect(world.domainState(g.domid)).toBe("suspended");
    expect(logs.join("\n")).toMatch(/left alone, suspended: the toolstack is working on it.*xl \(pid 8\)/);
    expect(Journal.load(join(dir, "journal.json")).journal.entries().map((e) => e.domid)).toEqual([g.domid]);
  });

  it("a suspend request racing checkpoint.start is refused; it neither replaces nor drops the loop's journal entries", async () => {
    const s = await start();
    const g = await world.addGuest({ suspendDelayMs: 5 });
    const c = await client();
    const atResume = journalAtEachResume(s, g);
    // Same tick: the suspend's queue task runs right after checkpoint.start's set-up, before the first cycle.
    const [started, suspended] = await Promise.allSettled([
      c.request("checkpoint.start", { domid: g.domid, intervalMs: 0, count: 3 }),
      c.request("suspend", { domid: g.domid }),
    ]);
    expect(started.status).toBe("fulfilled");
    expect(suspended).toMatchObject({ status: "rejected", reason: { code: "EBUSY" } });
    let loop: LoopStatus | undefined;
    for (let i = 0; i < 200 && (loop = await loopOf(c, g.domid)).running; i++) await sleep(10);
    expect(loop).toMatchObject({ running: false, ok: 3, failed: 0, skipped: 0 });
    expect(atResume).toEqual([0, 1, 2].map(() => [`${g.domid}:checkpoint`]));
    expect(s.daemon.journal.entries()).toEqual([]);
    expect(world.domainState(g.domid)).toBe("running");
  });

  it("the client sizes a request's timeout from the request's timeoutMs (a suspend allowed 2 s is not given up after the client's 100 ms)", async () => {
    await start();
    const g = await world.addGuest({ suspendDelayMs: 300 });
    const c = await DaemonClient.connect({ socketPath: join(dir, "daemon.sock"), timeoutMs: 100 });
    clients.push(c);
    const r = await c.request("suspend", { domid: g.domid, timeoutMs: 2000 });
    expect(r.path).toBe("xenstore+evtchn");
    expect(world.domainState(g.domid)).toBe("suspended");
  });

  it("one connection has at most 32 requests in the daemon at once; the rest wait in its socket and are all answered", async () => {
    const s = await start();
    let inside = 0;
    let most = 0;
    const handle = s.daemon.handle.bind(s.daemon);
    s.daemon.handle = async (req) => {
      most = Math.max(most, ++inside);
      try {
        await sleep(2);
        return await handle(req);
      } finally {
        inside--;
      }
    };
    const r = await raw(Array.from({ length: 200 }, (_, i) => `{"id":${i},"op":"metrics"}\n`).join(""), 200);
    expect(r.lines).toHaveLength(200);
    expect(r.lines.every((l) => l.ok)).toBe(true);
    expect(most).toBeGreaterThan(1);
    expect(most).toBeLessThanOrEqual(32);
  });

  it("stops reading a connection whose client does not read its answers (write backpressure), and serves it once it reads", async () => {
    const s = await start();
    const n = 3000;
    const sock = createConnection(join(dir, "daemon.sock"));
    await new Promise((r) => sock.once("connect", r));
    sock.write(Array.from({ length: n }, (_, i) => `{"id":${i},"op":"metrics"}\n`).join(""));
    // The client reads nothing: wait until the daemon stops answering.
    let last = -1;
    for (let i = 0; i < 40 && s.server.answered !== last; i++) {
      last = s.server.answered;
      await sleep(100);
    }
    expect(s.server.answered).toBeLessThan(n / 4);
    let lines = 0;
    sock.on("data", (d: Buffer) => {
      for (const b of d) if (b === 0x0a) lines++;
    });
    for (let i = 0; i < 300 && lines < n; i++) await sleep(20);
    sock.destroy();
    expect(lines).toBe(n);
  });

  it("closes an idle session, and a session whose domain is destroyed", async () => {
    const s = await start({ idleMs: 100 });
    const g = await world.addGuest();
    const g2 = await world.addGuest();
    const c = await client();
    await c.request("checkpoint.start", { domid: g.domid, intervalMs: 0, count: 2 });
    await c.request("checkpoint.start", { domid: g2.domid, intervalMs: 5 });
    await sleep(50);
    expect(world.boundPorts()).toBeGreaterThan(0);
    world.xen.hv.destroyDomain(g2.domid);
    world.xsd.destroyDomain(g2.domid);
    await sleep(400);
    expect(await c.request("metrics")).toMatch(/fastsuspend_sessions_open 0\n/);
    expect(world.boundPorts()).toBe(0);
    expect(s.daemon.journal.entries()).toEqual([]);
    expect(world.domainState(g.domid)).toBe("running");
  });
});

describe("checkpoint loops across a daemon restart (loops.json)", () => {
  it("a checkpoint.start loop starts again after a stop and a start; a stopped or renamed one does not", async () => {
    const a = await world.addGuest();
    const b = await world.addGuest();
    await world.xenstore.write(`/local/domain/${a.domid}/name`, "ga");
    await world.xenstore.write(`/local/domain/${b.domid}/name`, "gb");
    let s = await start();
    let c = await client();
    await c.request("checkpoint.start", { domid: a.domid, intervalMs: 5 });
    await c.request("checkpoint.start", { domid: b.domid, intervalMs: 5, count: 1000 });
    await sleep(50);
    // The daemon's stop (an upgrade, a restart) keeps both for the next start.
    await s.stop();
    svc = undefined;
    const kept = JSON.parse(readFileSync(join(dir, "loops.json"), "utf8")) as { loops: { domid: number; name: string; count?: number }[] };
    expect(kept.loops.map((l) => [l.domid, l.name, l.count])).toEqual([[a.domid, "ga", undefined], [b.domid, "gb", 1000]]);
    expect(world.domainState(a.domid)).toBe("running");
    // gb is another domain by the time the daemon starts again: its loop is not restarted.
    await world.xenstore.write(`/local/domain/${b.domid}/name`, "other");
    const lines: string[] = [];
    s = await start({ log: (l) => lines.push(l) });
    // Not within the start: the caller restarts them once its signal handlers are in (main.ts).
    expect(s.daemon.loopStore.list().map((l) => l.domid)).toEqual([a.domid, b.domid]);
    c = await client();
    expect((await c.request("status", { domid: a.domid })).loop).toBeNull();
    await s.restartKeptLoops();
    const before = (await loopOf(c, a.domid)).done;
    await sleep(60);
    const la = await loopOf(c, a.domid);
    expect(la.running).toBe(true);
    expect(la.done).toBeGreaterThan(before);
    expect((await c.request("status", { domid: b.domid })).loop).toBeNull();
    expect(lines.join("\n")).toMatch(new RegExp(`dom${b.domid}: not restarted: the loop was on "gb", the domain is now "other"`));
    // A stop request is the loop's own end: nothing is kept, and a clean stop leaves no file.
    await c.request("checkpoint.stop", { domid: a.domid });
    expect(s.daemon.loopStore.list()).toEqual([]);
    await s.stop();
    svc = undefined;
    expect(existsSync(join(dir, "loops.json"))).toBe(false);
    expect(world.boundPorts()).toBe(0);
  });

  /** A loops.json as a previous daemon would leave it. */
  function keep(...loops: Record<string, unknown>[]): void {
    writeFileSync(join(dir, "loops.json"), JSON.stringify({ version: 1, loops }));
  }

  /** A kept loop on a new paused guest NAME, waiting for its retry (every 50 ms) after the restart. */
  async function keptLoopWaiting(name: string, extra: { log?: (l: string) => void } = {}): Promise<{ g: FakeWorldGuest; s: RunningService }> {
    const g = await world.addGuest();
    await world.xenstore.write(`/local/domain/${g.domid}/name`, name);
    keep({ domid: g.domid, name, intervalMs: 5, since: "2026-12-01T00:00:00.000Z" });
    world.xen.binding(0).pause(g.domid);
    const s = await start({ ...extra, keptLoopRetry: { everyMs: 50, forMs: 10_000 } });
    await s.restartKeptLoops();
    return { g, s };
  }

  it("a kept loop whose domain cannot be checkpointed yet (paused by another tool) is tried again, not dropped", async () => {
    const g = await world.addGuest();
    await world.xenstore.write(`/local/domain/${g.domid}/name`, "gp");
    keep({ domid: g.domid, name: "gp", intervalMs: 5, since: "2026-12-01T00:00:00.000Z" });
    world.xen.binding(0).pause(g.domid); // as xl pause does
    const lines: string[] = [];
    const s = await start({ log: (l) => lines.push(l), keptLoopRetry: { everyMs: 50, forMs: 10_000 } });
    await s.restartKeptLoops();
    expect(lines.join("\n")).toMatch(new RegExp(`dom${g.domid} \\(gp\\): loop not restarted yet \\(.*paused.*\\): trying again`));
    expect(s.daemon.loopStore.list().map((l) => l.domid)).toEqual([g.domid]);
    world.xen.binding(0).unpause(g.domid);
    const c = await client();
    let loop = (await c.request("status", { domid: g.domid })).loop;
    for (let i = 0; i < 100 && loop?.running !== true; i++) {
      await sleep(20);
      loop = (await c.request("status", { domid: g.domid })).loop;
    }
    expect(loop?.running).toBe(true);
    // The time the user began it carries over; the restart is counted.
    expect(s.daemon.loopStore.list()).toEqual([expect.objectContaining({ domid: g.domid, since: "2026-12-01T00:00:00.000Z", restarts: 1 })]);
  });

  it("a kept loop restarted many times in quick succession (a daemon dying on it) is dropped; a bad entry is dropped and said", async () => {
    const g = await world.addGuest();
    const h = await world.addGuest();
    await world.xenstore.write(`/local/domain/${g.domid}/name`, "gq");
    await world.xenstore.write(`/local/domain/${h.domid}/name`, "gh");
    keep(
      { domid: g.domid, name: "gq", intervalMs: 5, since: "2026-12-01T00:00:00.000Z", restarts: 5, restartedAt: new Date().toISOString() },
      { domid: h.domid, name: "gh", intervalMs: 5, count: 0, since: "2026-12-01T00:00:00.000Z" },
    );
    const lines: string[] = [];
    const s = await start({ log: (l) => lines.push(l) });
    await s.restartKeptLoops();
    const said = lines.join("\n");
    expect(said).toMatch(new RegExp(`dom${g.domid} \\(gq\\): not restarted: started again 5 times, each within 60 s`));
    expect(said).toMatch(/loops\.json: an entry dropped \(.*count.*\)/);
    expect(s.daemon.loopStore.list()).toEqual([]);
    const c = await client();
    expect((await c.request("status", { domid: g.domid })).loop).toBeNull();
    expect((await c.request("status", { domid: h.domid })).loop).toBeNull();
  });

  it("a stop while kept loops are being started again stops them too and keeps them", async () => {
    const g = await world.addGuest();
    await world.xenstore.write(`/local/domain/${g.domid}/name`, "gs");
    keep({ domid: g.domid, name: "gs", intervalMs: 5, since: "2026-12-01T00:00:00.000Z" });
    const s = await start();
    const restarting = s.restartKeptLoops();
    await s.stop();
    svc = undefined;
    await restarting;
    expect(world.domainState(g.domid)).toBe("running");
    expect(world.boundPorts()).toBe(0);
    const kept = JSON.parse(readFileSync(join(dir, "loops.json"), "utf8")) as { loops: { domid: number }[] };
    expect(kept.loops.map((l) => l.domid)).toEqual([g.domid]);
  });

  it("a loops.json that cannot be written is said; the loop runs and memory stays authoritative", async () => {
    const g = await world.addGuest();
    await world.xenstore.write(`/local/domain/${g.domid}/name`, "gw");
    const lines: string[] = [];
    const s = await start({ log: (l) => lines.push(l) });
    // A directory where the file goes: the atomic rename fails (EISDIR), as a full or read-only /run would.
    mkdirSync(join(dir, "loops.json"));
    const c = await client();
    await c.request("checkpoint.start", { domid: g.domid, intervalMs: 5 });
    expect((await loopOf(c, g.domid)).running).toBe(true);
    expect(lines.join("\n")).toMatch(/cannot write the loops to restart, .*loops\.json/);
    expect(s.daemon.loopStore.list().map((l) => l.domid)).toEqual([g.domid]);
    const stopped = await c.request("checkpoint.stop", { domid: g.domid });
    expect((stopped.loop).stoppedBy).toBe("request");
    expect(s.daemon.loopStore.list()).toEqual([]);
    rmSync(join(dir, "loops.json"), { recursive: true, force: true });
  });

  it("checkpoint.stop on a kept loop waiting for a retry drops it for good (review 11: it started anyway)", async () => {
    const { g, s } = await keptLoopWaiting("g1");
    const c = await client();
    const stopped = (await c.request("checkpoint.stop", { domid: g.domid })).loop;
    expect(stopped).toMatchObject({ running: false, done: 0, stoppedBy: "request", startedAt: "2026-12-01T00:00:00.000Z" });
    expect(s.daemon.loopStore.list()).toEqual([]);
    world.xen.binding(0).unpause(g.domid);
    await sleep(200);
    expect((await c.request("status", { domid: g.domid })).loop).toBeNull();
  });

  it("a client's checkpoint.start that fails while a kept loop waits leaves the retry in place (review 11)", async () => {
    const { g } = await keptLoopWaiting("g2");
    const c = await client();
    expect((await errorOf(c.request("checkpoint.start", { domid: g.domid, intervalMs: 5 }))).code).toBe("EBUSY");
    world.xen.binding(0).unpause(g.domid);
    let loop: LoopStatus | null = null;
    for (let i = 0; i < 100 && loop?.running !== true; i++) {
      await sleep(20);
      loop = (await c.request("status", { domid: g.domid })).loop;
    }
    expect(loop?.running).toBe(true);
  });

  it("a client's `checkpoint` loop (not kept) that wins over a waiting kept loop drops its entry (review 11)", async () => {
    const lines: string[] = [];
    const { g, s } = await keptLoopWaiting("g3", { log: (l) => lines.push(l) });
    world.xen.binding(0).unpause(g.domid);
    const c = await client();
    await c.request("checkpoint", { domid: g.domid, intervalMs: 5, count: 40 });
    expect(lines.join("\n")).toMatch(/a client's loop already runs on it: the kept one is dropped/);
    expect(s.daemon.loopStore.list()).toEqual([]);
  });

  it("orderly restarts (systemctl restart) are not counted as a daemon dying on the loop (review 11)", async () => {
    const g = await world.addGuest();
    await world.xenstore.write(`/local/domain/${g.domid}/name`, "g4");
    let s = await start();
    const c = await client();
    await c.request("checkpoint.start", { domid: g.domid, intervalMs: 5 });
    const lines: string[] = [];
    for (let i = 0; i < 7; i++) {
      for (const x of clients.splice(0)) x.close();
      await s.stop();
      s = await start({ log: (l) => lines.push(l) });
      await s.restartKeptLoops();
    }
    expect(lines.join("\n")).not.toMatch(/dying on this loop/);
    expect((await loopOf(await client(), g.domid)).running).toBe(true);
  });

  it("a restart is counted on disk before its set-up, so a daemon dying in the set-up is counted (review 11)", async () => {
    const g = await world.addGuest();
    await world.xenstore.write(`/local/domain/${g.domid}/name`, "g5");
    keep({ domid: g.domid, name: "g5", intervalMs: 5, since: "2026-12-01T00:00:00.000Z", restarts: 2, restartedAt: new Date().toISOString() });
    // A set-up that does not get through (the domain paused) stands for one a crash cuts short.
    world.xen.binding(0).pause(g.domid);
    const s = await start({ keptLoopRetry: { everyMs: 60_000, forMs: 120_000 } });
    await s.restartKeptLoops();
    const onDisk = JSON.parse(readFileSync(join(dir, "loops.json"), "utf8")) as { loops: { restarts?: number }[] };
    expect(onDisk.loops[0]?.restarts).toBe(3);
  });

  it("an unreadable loops.json is said and starts nothing", async () => {
    writeFileSync(join(dir, "loops.json"), "{not json");
    const lines: string[] = [];
    const s = await start({ log: (l) => lines.push(l) });
    expect(s.daemon.loopStore.list()).toEqual([]);
    expect(lines.join("\n")).toMatch(/loops\.json, are not JSON/);
  });
});

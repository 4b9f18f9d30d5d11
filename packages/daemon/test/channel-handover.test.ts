// A patched guest (one that advertises its suspend channel) under fastsuspendd: between the
// daemon's cycles, libxl must be able to do what `xl save -c` does first: take the suspend lock
// and bind the guest's channel (xc_suspend_evtchn_init_exclusive). In the lab, a daemon that kept
// the channel bound for the whole loop made `xl save -c` fail with "failed to bind suspend event
// channel" while the loop reported every cycle ok.
import type { DaemonClient, LoopStatus, ServiceOptions } from "../src";
import { sleep, useDaemonHarness } from "./harness";

const h = useDaemonHarness("fsd-chan-");
let c: DaemonClient;

async function start(extra: Partial<ServiceOptions> = {}): Promise<void> {
  await h.start(extra);
  c = await h.client();
}

async function loopOf(domid: number): Promise<LoopStatus> {
  const { loop } = await c.request("status", { domid });
  if (loop === null) throw new Error(`no loop on domain ${domid}`);
  return loop;
}

/**
 * libxl's xc_suspend_evtchn_init_exclusive, retried while the daemon is mid-cycle (it holds the
 * lock only then): lock, bind the guest's port, subscribe it. Returns how it ended.
 */
async function libxlTakesChannel(domid: number, port: number): Promise<{ ok: boolean; error?: string; release?: () => void }> {
  const xl = h.world.binding();
  let lastErr = "";
  for (let i = 0; i < 200; i++) {
    let lock;
    try {
      lock = xl.lockSuspend(domid);
    } catch (err) {
      lastErr = String(err);
      await sleep(1);
      continue;
    }
    const handle = xl.openEvtchn({ poll: false });
    try {
      const local = handle.bindInterdomain(domid, port);
      xl.subscribeForSuspend(domid, port);
      return {
        ok: true,
        release: () => {
          handle.unbind(local);
          handle.close();
          lock.release();
        },
      };
    } catch (err) {
      handle.close();
      lock.release();
      return { ok: false, error: String(err) };
    }
  }
  return { ok: false, error: `lock never free: ${lastErr}` };
}

it("between the cycles of a loop the guest's channel is unbound: libxl can take it, the loop skips meanwhile, then goes on", async () => {
  await start();
  const g = await h.world.addGuest({ channel: "ok" });
  const port = g.channelPort ?? -1;
  const started = await c.request("checkpoint.start", { domid: g.domid, intervalMs: 5 });
  expect(started.path).toMatch(/^evtchn\+/);
  for (let i = 0; i < 200 && (await loopOf(g.domid)).ok < 3; i++) await sleep(5);
  const xl = await libxlTakesChannel(g.domid, port);
  expect(xl.error).toBeUndefined();
  expect(xl).toMatchObject({ ok: true });
  // While xl has the domain, the daemon's cycles are skipped, not failed.
  const okBefore = (await loopOf(g.domid)).ok;
  await sleep(60);
  const during = await loopOf(g.domid);
  expect(during.ok).toBe(okBefore);
  expect(during.skipped).toBeGreaterThan(0);
  expect(during.failed).toBe(0);
  xl.release?.();
  // xl's leftover subscription must not stop the loop; it goes on over the same channel.
  for (let i = 0; i < 200 && (await loopOf(g.domid)).ok < okBefore + 3; i++) await sleep(5);
  const after = await c.request("checkpoint.stop", { domid: g.domid });
  expect(after.loop.ok).toBeGreaterThanOrEqual(okBefore + 3);
  expect(after.loop.failed).toBe(0);
  expect(h.world.domainState(g.domid)).toBe("running");
  // Stopped: nothing of ours bound to the guest's channel either.
  const again = await libxlTakesChannel(g.domid, port);
  expect(again).toMatchObject({ ok: true });
  again.release?.();
});

it("a guest that acts late on a timed-out channel request is resumed, not skipped as 'suspended by another tool' forever", async () => {
  await start();
  const g = await h.world.addGuest({ channel: "ok", suspendDelayMs: 400 });
  // The next cycle starts well after the late suspend, so it finds the domain suspended.
  await c.request("checkpoint.start", { domid: g.domid, intervalMs: 600, timeoutMs: 30 });
  for (let i = 0; i < 200 && (await loopOf(g.domid)).failed < 1; i++) await sleep(5);
  g.opts.suspendDelayMs = 2; // from now on it answers in time
  for (let i = 0; i < 500 && (await loopOf(g.domid)).ok < 3; i++) await sleep(10);
  const stopped = await c.request("checkpoint.stop", { domid: g.domid });
  expect(stopped.loop.ok).toBeGreaterThanOrEqual(3);
  expect(h.world.domainState(g.domid)).toBe("running");
});

it("the sweeper resumes a late suspend of a timed-out suspend request (no loop running)", async () => {
  await start({ idleMs: 200, session: { defaultTimeoutMs: 1000, lateSuspendGraceMs: 50 } });
  const g = await h.world.addGuest({ channel: "ok", suspendDelayMs: 300 });
  await expect(c.request("suspend", { domid: g.domid, timeoutMs: 30 })).rejects.toMatchObject({ code: "ETIMEDOUT" });
  for (let i = 0; i < 100 && h.world.domainState(g.domid) !== "suspended"; i++) await sleep(10);
  for (let i = 0; i < 300 && h.world.domainState(g.domid) !== "running"; i++) await sleep(10);
  expect(h.world.domainState(g.domid)).toBe("running");
});

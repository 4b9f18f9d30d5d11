import { isXenError } from "./errors";
import { FakeXen } from "./testing";

function pair() {
  const xen = new FakeXen().binding();
  const a = xen.openEvtchn();
  const b = xen.openEvtchn();
  const pa = a.bindUnboundPort(0);
  const pb = b.bindInterdomain(0, pa);
  return { xen, a, b, pa, pb };
}

describe("EvtchnPoller", () => {
  it("latches an event nobody waited for, once (coalesced)", async () => {
    const { a, b, pa, pb } = pair();
    b.notify(pb);
    await new Promise((r) => setImmediate(r));
    await a.wait(pa, { timeoutMs: 50 }); // latched
    expect(a.clearLatched(pa)).toBe(false);
    a.close();
    b.close();
  });

  it("times out with ETIMEDOUT, honours an AbortSignal, and close() rejects waiters", async () => {
    const { a, b, pa } = pair();
    await expect(a.wait(pa, { timeoutMs: 5 })).rejects.toMatchObject({ code: "ETIMEDOUT" });
    const ac = new AbortController();
    const aborted = a.wait(pa, { signal: ac.signal });
    ac.abort(new Error("stop"));
    await expect(aborted).rejects.toThrow("stop");
    const pending = a.wait(pa);
    a.close();
    await expect(pending).rejects.toMatchObject({ code: "ECANCELED" });
    b.close();
  });

  it("unbind rejects that port's waiters", async () => {
    const { a, b, pa } = pair();
    const w = a.wait(pa);
    a.unbind(pa);
    const err: unknown = await w.catch((e: unknown) => e);
    expect(isXenError(err, "ECANCELED")).toBe(true);
    a.close();
    b.close();
  });
});

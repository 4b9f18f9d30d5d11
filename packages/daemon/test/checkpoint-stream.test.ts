// The `checkpoint` request: a loop run on one request, its progress streamed on the same connection
// and its summary as the answer when it ends, so that no client has to poll `status` for it.
import { createConnection } from "node:net";

import { isDaemonError, PROTOCOL_VERSION, type CheckpointProgress } from "../src";
import { sleep, useDaemonHarness } from "./harness";

const h = useDaemonHarness("fsd-stream-");

/** Every line one raw connection got for `text`, until a line with `ok` (the answer) came. */
function rawUntilAnswer(text: string): Promise<Record<string, unknown>[]> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(h.socketPath);
    const lines: Record<string, unknown>[] = [];
    let buf = "";
    sock.on("data", (d: Buffer) => {
      buf += d.toString();
      for (let i = buf.indexOf("\n"); i >= 0; i = buf.indexOf("\n")) {
        const line = JSON.parse(buf.slice(0, i)) as Record<string, unknown>;
        buf = buf.slice(i + 1);
        lines.push(line);
        if ("ok" in line) {
          sock.destroy();
          resolve(lines);
        }
      }
    });
    sock.on("error", reject);
    sock.write(text);
  });
}

describe("checkpoint: one request for a whole loop", () => {
  it("streams progress frames (v, id, counts) and answers with the loop's summary when it ends", async () => {
    const svc = await h.start();
    const g = await h.world.addGuest();
    const lines = await rawUntilAnswer(`${JSON.stringify({ id: "cp", op: "checkpoint", domid: g.domid, intervalMs: 20, count: 10, progressMs: 30 })}\n`);
    const frames = lines.filter((l) => "progress" in l);
    const answer = lines[lines.length - 1];
    expect(frames.length).toBeGreaterThanOrEqual(3);
    for (const f of frames) expect(f).toMatchObject({ v: PROTOCOL_VERSION, id: "cp", progress: { domid: g.domid, path: "xenstore+evtchn", count: 10, failed: 0 } });
    // The first once the loop is set up; the counts never go back.
    expect(frames[0]).toMatchObject({ progress: { running: true, done: 0 } });
    const done = frames.map((f) => (f.progress as CheckpointProgress).done);
    expect([...done].sort((a, b) => a - b)).toEqual(done);
    expect(done.some((n) => n > 0 && n < 10)).toBe(true);
    expect(answer).toMatchObject({ v: PROTOCOL_VERSION, id: "cp", ok: true, result: { domid: g.domid, loop: { running: false, done: 10, ok: 10, stoppedBy: "count", cycleMs: { n: 10 } } } });
    expect(svc.server.progressFrames).toBe(frames.length);
    // Nobody polled: the daemon counted no status request.
    expect(await (await h.client()).request("metrics")).not.toMatch(/fastsuspend_requests_total\{op="status"\}/);
    expect(h.world.domainState(g.domid)).toBe("running");
  });

  it("completes when checkpoint.stop comes from another connection; the client has no overall timeout, only one for silence", async () => {
    await h.start();
    const g = await h.world.addGuest();
    // 200 ms per request, and a loop that runs far longer: its progress frames keep it alive.
    const c = await h.client(200);
    const seen: CheckpointProgress[] = [];
    const run = c.checkpoint({ domid: g.domid, intervalMs: 10, progressMs: 20 }, (p) => seen.push(p));
    await sleep(600);
    const other = await h.client();
    const stopped = await other.request("checkpoint.stop", { domid: g.domid });
    const { loop } = await run;
    expect(loop).toMatchObject({ running: false, stoppedBy: "request", failed: 0 });
    expect(loop.ok).toBe(stopped.loop.ok);
    expect(loop.ok).toBeGreaterThan(3);
    expect(seen.length).toBeGreaterThan(10);
    expect(seen[seen.length - 1]?.ok).toBeLessThanOrEqual(loop.ok);
  });

  it("a loop that cannot start is this request's error, with no progress frame; one already running is EBUSY", async () => {
    await h.start();
    const g = await h.world.addGuest();
    const c = await h.client();
    const seen: CheckpointProgress[] = [];
    const err = await c.checkpoint({ domid: 4242, intervalMs: 0 }, (p) => seen.push(p)).catch((e: unknown) => e);
    expect(isDaemonError(err, "ENODOMAIN")).toBe(true);
    expect(seen).toEqual([]);
    const first = c.checkpoint({ domid: g.domid, intervalMs: 5 });
    await sleep(50);
    const busy = await c.checkpoint({ domid: g.domid, intervalMs: 0 }).catch((e: unknown) => e);
    expect(isDaemonError(busy, "EBUSY")).toBe(true);
    await c.request("checkpoint.stop", { domid: g.domid });
    expect((await first).loop.stoppedBy).toBe("request");
  });

  it("the daemon stopping ends the loop: the stream fails with ESHUTDOWN and the guest is left running", async () => {
    const svc = await h.start();
    const g = await h.world.addGuest();
    const c = await h.client();
    const run = c.checkpoint({ domid: g.domid, intervalMs: 5 }).catch((e: unknown) => e);
    await sleep(50);
    await svc.stop();
    expect(isDaemonError(await run, "ESHUTDOWN")).toBe(true);
    expect(h.world.domainState(g.domid)).toBe("running");
  });
});

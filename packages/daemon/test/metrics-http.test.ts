// The daemon's exposition (names, labels, types, HELP) read through its socket and over the opt-in
// HTTP listener, on the coordinator's fake Xen host; and the listener's refusals and clean-up.
import { readdirSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { createConnection, createServer, type AddressInfo } from "node:net";

import { MetricsListenError, parseListenAddress, startService, type DaemonClient, type RunningService } from "../src";
import { parsePrometheusText, type PromFamily } from "../src/testing";
import { sleep, useDaemonHarness } from "./harness";

const h = useDaemonHarness("fsd-metrics-", { session: { defaultTimeoutMs: 1000, lateSuspendGraceMs: 50 } });
let c: DaemonClient;

async function start(metricsListen?: string, goneSeriesMs?: number): Promise<RunningService> {
  const svc = await h.start({
    ...(metricsListen === undefined ? {} : { metricsListen }),
    ...(goneSeriesMs === undefined ? {} : { goneSeriesMs }),
  });
  c = await h.client();
  return svc;
}

function family(fams: Map<string, PromFamily>, name: string): PromFamily {
  const f = fams.get(name);
  if (f === undefined) throw new Error(`no family ${name}`);
  return f;
}

/** The value of the sample of `name` whose labels are exactly `labels`, or undefined. */
function valueOf(fams: Map<string, PromFamily>, name: string, labels: Record<string, string>): number | undefined {
  for (const f of fams.values()) {
    for (const s of f.samples) if (s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === JSON.stringify(Object.entries(labels).sort())) return s.value;
  }
  return undefined;
}

function get(port: number, path: string, method = "GET"): Promise<{ status: number; type: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: "127.0.0.1", port, path, method }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => {
        resolve({ status: res.statusCode ?? 0, type: res.headers["content-type"], body });
      });
    });
    req.on("error", reject);
    req.end();
  });
}

function refused(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = createConnection({ host: "127.0.0.1", port });
    s.on("connect", () => {
      s.destroy();
      resolve("connected");
    });
    s.on("error", (err: NodeJS.ErrnoException) => {
      resolve(err.code ?? err.message);
    });
  });
}

describe("the daemon's metrics", () => {
  it("label each domain by name and domid (escaped), count failures by reason, and say which path each guest uses and why it fell back", async () => {
    await start(undefined, 1000);
    const name = 'web"1\\prod\nx';
    const fast = await h.world.addGuest({ channel: "ok" });
    const stock = await h.world.addGuest();
    const dead = await h.world.addGuest({ answersXenstore: false });
    await h.world.xs.write(`/local/domain/${fast.domid}/name`, "fast");
    await h.world.xs.write(`/local/domain/${stock.domid}/name`, name);
    await h.world.xs.write(`/local/domain/${dead.domid}/name`, "dead");
    await Promise.all([
      c.checkpoint({ domid: fast.domid, intervalMs: 0, count: 3 }),
      c.checkpoint({ domid: stock.domid, intervalMs: 0, count: 4 }),
      c.checkpoint({ domid: dead.domid, intervalMs: 0, count: 2, timeoutMs: 50 }),
    ]);
    const text = await c.request("metrics");
    expect(text).toContain(`fastsuspend_checkpoint_cycles_total{domain="web\\"1\\\\prod\\nx",domid="${stock.domid}",result="ok"} 4\n`);
    const fams = parsePrometheusText(text);
    const id = (g: { domid: number }): string => String(g.domid);
    expect(valueOf(fams, "fastsuspend_checkpoint_cycles_total", { domain: name, domid: id(stock), result: "ok" })).toBe(4);
    expect(valueOf(fams, "fastsuspend_checkpoint_cycles_total", { domain: "fast", domid: id(fast), result: "ok" })).toBe(3);
    expect(valueOf(fams, "fastsuspend_checkpoint_cycles_total", { domain: "dead", domid: id(dead), result: "failed" })).toBe(2);
    expect(valueOf(fams, "fastsuspend_checkpoint_cycle_failures_total", { domain: "dead", domid: id(dead), reason: "timeout" })).toBe(2);
    expect(family(fams, "fastsuspend_checkpoint_cycle_failures_total").samples).toHaveLength(1);
    expect(valueOf(fams, "fastsuspend_domain_path_info", { domain: "fast", domid: id(fast), path: "evtchn+evtchn", fallback: "none" })).toBe(1);
    expect(valueOf(fams, "fastsuspend_domain_path_info", { domain: name, domid: id(stock), path: "xenstore+evtchn", fallback: "channel-absent" })).toBe(1);
    expect(valueOf(fams, "fastsuspend_domain_path_fallback", { domain: "fast", domid: id(fast) })).toBe(0);
    expect(valueOf(fams, "fastsuspend_domain_path_fallback", { domain: name, domid: id(stock) })).toBe(1);
    expect(valueOf(fams, "fastsuspend_checkpoint_cycle_seconds_count", { path: "evtchn+evtchn" })).toBe(3);
    expect(valueOf(fams, "fastsuspend_checkpoint_cycle_seconds_bucket", { path: "xenstore+evtchn", le: "+Inf" })).toBe(4);
    // Every family says what it is.
    const expected: Record<string, string> = {
      fastsuspend_suspend_seconds: "histogram",
      fastsuspend_resume_seconds: "histogram",
      fastsuspend_checkpoint_cycle_seconds: "histogram",
      fastsuspend_requests_total: "counter",
      fastsuspend_request_errors_total: "counter",
      fastsuspend_checkpoint_cycles_total: "counter",
      fastsuspend_checkpoint_cycle_failures_total: "counter",
      fastsuspend_lock_handover_total: "counter",
      fastsuspend_toolstack_checks_total: "counter",
      fastsuspend_requests_held_total: "counter",
      fastsuspend_checkpoint_loops_running: "gauge",
      fastsuspend_checkpoint_loop_interval_seconds: "gauge",
      fastsuspend_checkpoint_loop_cycles: "gauge",
      fastsuspend_domain_path_info: "gauge",
      fastsuspend_domain_path_fallback: "gauge",
      fastsuspend_sessions_open: "gauge",
      fastsuspend_domains_followed: "gauge",
      fastsuspend_clients_connected: "gauge",
      fastsuspend_event_loop_lag_seconds: "gauge",
      fastsuspend_event_loop_lag_max_seconds: "gauge",
      process_start_time_seconds: "gauge",
    };
    expect(Object.fromEntries([...fams.values()].map((f) => [f.name, f.type]))).toEqual(expected);
    for (const f of fams.values()) expect(f.help?.length ?? 0).toBeGreaterThan(10);
    const started = valueOf(fams, "process_start_time_seconds", {}) ?? 0;
    expect(started).toBeLessThanOrEqual(Date.now() / 1000);
    expect(started).toBeGreaterThan(Date.now() / 1000 - process.uptime() - 5);
    expect(valueOf(fams, "fastsuspend_event_loop_lag_seconds", {})).toBeGreaterThanOrEqual(0);
    expect(valueOf(fams, "fastsuspend_domains_followed", {})).toBe(3);
    // A domain that goes takes its series with it, once the next scrapes had its last counts.
    h.world.xen.hv.destroyDomain(stock.domid);
    h.world.xsd.destroyDomain(stock.domid);
    const scrape = async (): Promise<Map<string, PromFamily>> => parsePrometheusText(await c.request("metrics"));
    let after = await scrape();
    for (let i = 0; i < 100 && valueOf(after, "fastsuspend_domains_followed", {}) !== 2; i++) {
      await sleep(10);
      after = await scrape();
    }
    expect(valueOf(after, "fastsuspend_domains_followed", {})).toBe(2);
    expect(valueOf(after, "fastsuspend_checkpoint_cycles_total", { domain: name, domid: id(stock), result: "ok" })).toBe(4);
    // Its session and path are gone at once.
    expect(valueOf(after, "fastsuspend_domain_path_fallback", { domain: name, domid: id(stock) })).toBeUndefined();
    for (let i = 0; i < 300 && valueOf(after, "fastsuspend_checkpoint_cycles_total", { domain: name, domid: id(stock), result: "ok" }) !== undefined; i++) {
      await sleep(10);
      after = await scrape();
    }
    expect(valueOf(after, "fastsuspend_checkpoint_cycles_total", { domain: name, domid: id(stock), result: "ok" })).toBeUndefined();
    expect(valueOf(after, "fastsuspend_checkpoint_cycles_total", { domain: "fast", domid: id(fast), result: "ok" })).toBe(3);
  });
});

describe("the HTTP listener (--metrics-listen)", () => {
  it("serves GET /metrics on an ephemeral loopback port, 404 elsewhere, and is gone after stop", async () => {
    const s = await start("127.0.0.1:0");
    const port = s.metricsHttp?.address?.port ?? 0;
    expect(port).toBeGreaterThan(0);
    const ok = await get(port, "/metrics");
    expect(ok.status).toBe(200);
    expect(ok.type).toMatch(/^text\/plain; version=0\.0\.4(;|$)/);
    const fams = parsePrometheusText(ok.body);
    expect(family(fams, "fastsuspend_requests_total").type).toBe("counter");
    // The scrape went through the daemon's metrics request (counted, and gated like the socket's).
    expect(valueOf(fams, "fastsuspend_requests_total", { op: "metrics" })).toBe(1);
    expect((await get(port, "/metrics?x=1")).status).toBe(200);
    expect((await get(port, "/")).status).toBe(404);
    expect((await get(port, "/metrics/x")).status).toBe(404);
    expect((await get(port, "/status")).status).toBe(404);
    const post = await get(port, "/metrics", "POST");
    expect(post.status).toBe(405);
    const head = await get(port, "/metrics", "HEAD");
    expect([head.status, head.body]).toEqual([200, ""]);
    await s.stop();
    expect(s.metricsHttp?.listening).toBe(false);
    expect(await refused(port)).toBe("ECONNREFUSED");
  });

  it.each([
    ["0.0.0.0:9477", "ENOTLOOPBACK"],
    ["192.168.1.10:9477", "ENOTLOOPBACK"],
    ["[::]:9477", "ENOTLOOPBACK"],
    ["[2001:db8::1]:9477", "ENOTLOOPBACK"],
    ["localhost:9477", "EADDRESS"],
    ["127.0.0.1", "EADDRESS"],
    ["127.0.0.1:65536", "EADDRESS"],
    ["::1:9477", "EADDRESS"],
  ])("refuses %s (%s) before taking anything", async (addr, code) => {
    let thrown: unknown;
    try {
      parseListenAddress(addr);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toMatchObject({ code });
    const err: unknown = await startService({ xen: h.world.binding(), xs: h.world.xenstore, runDir: h.dir, metricsListen: addr }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MetricsListenError);
    expect(err).toMatchObject({ code });
    expect(readdirSync(h.dir)).toEqual([]);
    // Checked before the pid lock: with a daemon running, the address is still what is reported.
    await start();
    const again: unknown = await startService({ xen: h.world.binding(), xs: h.world.xenstore, runDir: h.dir, metricsListen: addr }).catch((e: unknown) => e);
    expect(again).toMatchObject({ code });
  });

  it("takes numeric loopback addresses, IPv4 and IPv6", () => {
    expect(parseListenAddress("127.0.0.1:9477")).toEqual({ host: "127.0.0.1", port: 9477 });
    expect(parseListenAddress("127.3.2.1:0")).toEqual({ host: "127.3.2.1", port: 0 });
    expect(parseListenAddress("[::1]:9477")).toEqual({ host: "::1", port: 9477 });
    expect(parseListenAddress("[::ffff:127.0.0.1]:1")).toEqual({ host: "::ffff:127.0.0.1", port: 1 });
  });

  it("a port it cannot bind fails the start with EBIND and leaves nothing behind; the next start works", async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, "127.0.0.1", r));
    const port = (taken.address() as AddressInfo).port;
    try {
      const err: unknown = await startService({ xen: h.world.binding(), xs: h.world.xenstore, runDir: h.dir, metricsListen: `127.0.0.1:${port}` }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MetricsListenError);
      expect(err).toMatchObject({ code: "EBIND", errno: "EADDRINUSE", message: expect.stringContaining(`127.0.0.1:${port}`) as unknown });
      // No socket, no pid file, no journal: and the pid lock is free again.
      expect(readdirSync(h.dir)).toEqual([]);
    } finally {
      taken.close();
    }
    const s = await start();
    expect(s.metricsHttp).toBeUndefined();
    expect(await c.request("metrics")).toContain("fastsuspend_requests_total");
  });
});

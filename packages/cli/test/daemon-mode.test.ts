// The CLI through fastsuspendd (a real daemon on a unix socket, over the fake host), and its
// fallback to working directly.
import { EventEmitter } from "node:events";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { FakeWorld, type FakeWorldGuest } from "@fastsuspend/coordinator/testing";
import { DaemonClient, startService, type RunningService } from "@fastsuspend/daemon";
import { parsePrometheusText } from "@fastsuspend/daemon/testing";

import { EXIT, parseCli, run, type Deps } from "../src";
import { writeFileAtomic } from "../src/real-env";
import { commandHelp } from "../src/usage";

let world: FakeWorld;
let dir: string;
let svc: RunningService;

beforeEach(async () => {
  world = await FakeWorld.create();
  dir = mkdtempSync(join(tmpdir(), "fs-cli-daemon-"));
  svc = await startService({ xen: world.binding(), xs: world.xenstore, runDir: dir });
});
afterEach(async () => {
  await svc.stop();
  await world.close();
  rmSync(dir, { recursive: true, force: true });
});

function deps(): Deps & { out: string[]; err: string[]; direct: number } {
  const out: string[] = [];
  const err: string[] = [];
  const d = {
    out,
    err,
    direct: 0,
    openEnv: () => {
      d.direct++;
      return Promise.resolve({ xen: world.binding(), xs: world.xenstore, close: () => Promise.resolve() });
    },
    stdout: (t: string) => out.push(t),
    stderr: (t: string) => err.push(t),
    writeFileAtomic,
    signals: new EventEmitter(),
    connectDaemon: () => DaemonClient.tryConnect({ socketPath: join(dir, "daemon.sock") }),
  };
  return d;
}

/** A guest called `name`, checkpointed `count` times by the CLI through the daemon. */
async function checkpointedGuest(name: string, count: number): Promise<FakeWorldGuest> {
  const g = await world.addGuest();
  await world.xs.write(`/local/domain/${g.domid}/name`, name);
  const d = deps();
  expect(await run(["checkpoint", String(g.domid), "--interval", "0", "--count", String(count)], d)).toBe(EXIT.ok);
  expect(d.direct).toBe(0);
  return g;
}

describe("fastsuspend through fastsuspendd", () => {
  it("parses status [DOM] and --no-daemon", () => {
    expect(parseCli(["status"])).toMatchObject({ command: "status", domid: -1 });
    expect(parseCli(["status", "4"])).toMatchObject({ command: "status", domid: 4 });
    expect(parseCli(["suspend", "4", "--no-daemon"])).toMatchObject({ noDaemon: true });
  });

  it("suspend, resume, info, checkpoint and status go through the daemon when it answers", async () => {
    const g = await world.addGuest();
    const d = deps();
    expect(await run(["suspend", String(g.domid)], d)).toBe(EXIT.ok);
    expect(d.out.join("")).toMatch(/suspended via xenstore\+evtchn in .* \(fastsuspendd\)/);
    expect(world.domainState(g.domid)).toBe("suspended");
    expect(await run(["resume", String(g.domid)], d)).toBe(EXIT.ok);
    expect(world.domainState(g.domid)).toBe("running");
    expect(await run(["info", String(g.domid), "--json"], d)).toBe(EXIT.ok);
    expect(JSON.parse(d.out[d.out.length - 1] ?? "")).toMatchObject({ domid: g.domid, chosen: "xenstore+evtchn" });
    expect(await run(["checkpoint", String(g.domid), "--interval", "1", "--count", "4"], d)).toBe(EXIT.ok);
    expect(d.out[d.out.length - 1]).toMatch(/4\/4 checkpoints via xenstore\+evtchn \(fastsuspendd\)/);
    expect(await run(["status", "--json"], d)).toBe(EXIT.ok);
    expect(JSON.parse(d.out[d.out.length - 1] ?? "")).toMatchObject({ domains: [{ domid: g.domid, state: "running" }] });
    expect(d.direct).toBe(0);
    // Daemon errors keep the CLI's exit codes, by their code: unknown domain and dom0 are 3, a
    // domain that is not suspended 1.
    expect(await run(["suspend", "999"], d)).toBe(EXIT.environment);
    expect(d.err.join("")).toMatch(/no domain 999/);
    expect(await run(["suspend", "0"], d)).toBe(EXIT.environment);
    expect(d.err.join("")).toMatch(/domain 0 is the control domain/);
    expect(await run(["resume", String(g.domid)], d)).toBe(EXIT.failed);
    expect(d.err.join("")).toMatch(/is not suspended: nothing to resume/);
  });

  it("status prints a table of domains, status DOM the domain in detail; --json prints the answer", async () => {
    const g = await checkpointedGuest("web", 3);
    const all = deps();
    expect(await run(["status"], all)).toBe(EXIT.ok);
    const lines = all.out.join("").split("\n");
    expect(lines[0]).toMatch(/^fastsuspendd: pid \d+, up \d+s, 1 client connected$/);
    expect(lines[1]).toMatch(/^DOMID +STATE +SESSION +CHECKPOINT LOOP$/);
    expect(lines[2]).toMatch(new RegExp(`^${g.domid} +running +\\S.* +stopped \\(count\\), 3/3 done, 3 ok, 0 failed; cycle median`));
    const one = deps();
    expect(await run(["status", "web"], one)).toBe(EXIT.ok);
    const text = one.out.join("");
    expect(text).toMatch(new RegExp(`^domain ${g.domid}: PV, running\n`));
    expect(text).toMatch(/\nwould use: xenstore\+evtchn\n/);
    expect(text).toMatch(/\ncheckpoint loop: stopped \(count\), 3\/3 done/);
    expect(text).not.toMatch(/^\s*[{"]/m);
    const json = deps();
    expect(await run(["status", String(g.domid), "--json"], json)).toBe(EXIT.ok);
    expect(JSON.parse(json.out.join(""))).toMatchObject({ domid: g.domid, loop: { ok: 3 } });
  });

  it("a domain name is resolved before the request goes to the daemon", async () => {
    const g = await world.addGuest();
    await world.xs.write(`/local/domain/${g.domid}/name`, "web");
    const d = deps();
    expect(await run(["suspend", "web"], d)).toBe(EXIT.ok);
    expect(d.out.join("")).toMatch(new RegExp(`^domain ${g.domid} suspended via .* \\(fastsuspendd\\)`));
    expect(world.domainState(g.domid)).toBe("suspended");
    expect(await run(["resume", "web"], d)).toBe(EXIT.ok);
    expect(world.domainState(g.domid)).toBe("running");
    const unknown = deps();
    expect(await run(["suspend", "nosuch"], unknown)).toBe(EXIT.environment);
    expect(unknown.err.join("")).toMatch(/no such domain "nosuch"/);
  });

  it("a checkpoint through the daemon prints progress from the daemon's counts", async () => {
    const g = await world.addGuest();
    const d = { ...deps(), progressEveryMs: 100 };
    expect(await run(["checkpoint", String(g.domid), "--interval", "10", "--count", "60", "--progress"], d)).toBe(EXIT.ok);
    const progress = d.err.filter((l) => l.includes("(fastsuspendd): "));
    expect(progress.length).toBeGreaterThan(0);
    for (const l of progress) expect(l).toMatch(new RegExp(`^fastsuspend: checkpoint on domain ${g.domid} \\(fastsuspendd\\): \\d+/60 done, \\d+ ok, 0 failed, [0-9.]+/s\\n$`));
    // Some line saw the loop under way.
    expect(progress.some((l) => !/: 0\/60 done/.test(l))).toBe(true);
  });

  it("a checkpoint through the daemon is one request that answers when the loop ends: no status polling", async () => {
    const g = await world.addGuest();
    const d = deps();
    expect(await run(["checkpoint", String(g.domid), "--interval", "10", "--count", "40", "--json"], d)).toBe(EXIT.ok);
    expect(JSON.parse(d.out.join(""))).toMatchObject({ domid: g.domid, running: false, ok: 40, stoppedBy: "count", cycleMs: { n: 40 } });
    expect(d.err.join("")).toContain(`fastsuspend: checkpoint loop on domain ${g.domid} via xenstore+evtchn started (fastsuspendd)\n`);
    const m = deps();
    expect(await run(["metrics"], m)).toBe(EXIT.ok);
    const requests = parsePrometheusText(m.out.join("")).get("fastsuspend_requests_total")?.samples.map((x) => `${x.labels.op ?? "?"}=${x.value}`);
    // The probes (one `metrics` per CLI run) and the loop's one request; the loop took 400+ ms, and
    // the CLI used to poll `status` every 250 ms for its end.
    expect(requests?.sort()).toEqual(["checkpoint=1", "metrics=3"]);
  });

  it("a signal before the daemon has set the loop up stops it as soon as it is (exit 130)", async () => {
    const g = await world.addGuest();
    const d = deps();
    const p = run(["checkpoint", String(g.domid), "--interval", "5", "--count", "100000"], d);
    // As soon as the CLI listens for it: the request is on its way, the loop not set up yet.
    const signals = d.signals as EventEmitter;
    while (signals.listenerCount("SIGINT") === 0) await new Promise((r) => setImmediate(r));
    signals.emit("SIGINT", "SIGINT");
    expect(d.err.join("")).not.toMatch(/started/);
    expect(await p).toBe(130);
    const c = await DaemonClient.connect({ socketPath: join(dir, "daemon.sock") });
    const st = await c.request("status", { domid: g.domid });
    c.close();
    expect(st.loop).toMatchObject({ running: false, stoppedBy: "request" });
  });

  it("SIGHUP during a checkpoint through the daemon stops the daemon's loop (exit 129, as Ctrl-C's 130)", async () => {
    const g = await world.addGuest();
    const d = deps();
    const p = run(["checkpoint", String(g.domid), "--interval", "5", "--count", "100000"], d);
    await new Promise((r) => setTimeout(r, 100));
    (d.signals as EventEmitter).emit("SIGHUP", "SIGHUP");
    expect(await p).toBe(129);
    const c = await DaemonClient.connect({ socketPath: join(dir, "daemon.sock") });
    const st = await c.request("status", { domid: g.domid });
    c.close();
    expect(st.loop).toMatchObject({ running: false, stoppedBy: "request" });
    expect(world.domainState(g.domid)).toBe("running");
  });

  it("--no-daemon, flags the daemon cannot honour, and no daemon at all: direct", async () => {
    const g = await world.addGuest();
    const d = deps();
    expect(await run(["suspend", String(g.domid), "--no-daemon"], d)).toBe(EXIT.ok);
    expect(d.out.join("")).not.toMatch(/fastsuspendd/);
    expect(await run(["resume", String(g.domid), "--full"], d)).toBe(EXIT.ok);
    expect(d.direct).toBe(2);
    // The daemon's loops have no time budget.
    expect(await run(["checkpoint", String(g.domid), "--interval", "0", "--count", "2", "--for", "60"], d)).toBe(EXIT.ok);
    expect(d.direct).toBe(3);
    await svc.stop();
    expect(await run(["info", String(g.domid)], d)).toBe(EXIT.ok);
    expect(d.direct).toBe(4);
    expect(await run(["status"], d)).toBe(EXIT.environment);
    expect(d.err.join("")).toMatch(/fastsuspendd is not running/);
  });
});

describe("fastsuspend metrics", () => {
  it("prints the daemon's Prometheus text: every family with HELP and TYPE, domains by name and domid, names escaped", async () => {
    const g = await checkpointedGuest('db"1', 3);
    const m = deps();
    expect(await run(["metrics"], m)).toBe(EXIT.ok);
    const text = m.out.join("");
    expect(text).toContain(`fastsuspend_checkpoint_cycles_total{domain="db\\"1",domid="${g.domid}",result="ok"} 3\n`);
    const fams = parsePrometheusText(text);
    const cycles = fams.get("fastsuspend_checkpoint_cycles_total");
    expect(cycles).toMatchObject({ type: "counter", help: expect.stringMatching(/per domain and result/) as unknown });
    expect(cycles?.samples).toEqual([{ name: "fastsuspend_checkpoint_cycles_total", labels: { domain: 'db"1', domid: String(g.domid), result: "ok" }, value: 3 }]);
    expect(fams.get("fastsuspend_domain_path_info")?.samples[0]?.labels).toEqual({ domain: 'db"1', domid: String(g.domid), path: "xenstore+evtchn", fallback: "channel-absent" });
    expect(fams.get("process_start_time_seconds")?.type).toBe("gauge");
    for (const f of fams.values()) {
      expect([f.name, f.type === "untyped"]).toEqual([f.name, false]);
      expect([f.name, (f.help ?? "") === ""]).toEqual([f.name, false]);
    }
    expect(m.direct).toBe(0);
  });

  it("--output FILE replaces the file whole, for node_exporter's textfile collector, without process_* metrics", async () => {
    const file = join(dir, "fastsuspend.prom");
    writeFileSync(file, "stale\n");
    const d = deps();
    expect(await run(["metrics", "--output", file], d)).toBe(EXIT.ok);
    expect(d.out.join("")).toBe("");
    const text = readFileSync(file, "utf8");
    const fams = parsePrometheusText(text);
    expect(fams.has("fastsuspend_requests_total")).toBe(true);
    // node_exporter exports its own process_start_time_seconds: two would fail its whole scrape.
    expect(fams.has("process_start_time_seconds")).toBe(false);
    expect(text).not.toMatch(/^(# (HELP|TYPE) )?process_/m);
    expect(readdirSync(dir).filter((f) => f.includes("fastsuspend.prom"))).toEqual(["fastsuspend.prom"]);
    // Unwritable: an error that names the file, exit 1, nothing left behind.
    const bad = deps();
    expect(await run(["metrics", "--output", join(dir, "no-such-dir", "x.prom")], bad)).toBe(EXIT.failed);
    expect(bad.err.join("")).toMatch(/cannot write .*no-such-dir\/x\.prom/);
  });

  it("takes no DOM and only its own flags; needs the daemon", async () => {
    expect(parseCli(["metrics"])).toMatchObject({ command: "metrics", domid: -1 });
    expect(() => parseCli(["metrics", "3"])).toThrow(/metrics: unexpected argument "3"/);
    expect(() => parseCli(["metrics", "--json"])).toThrow(/--json only applies to/);
    const help = commandHelp("metrics");
    expect(help).toMatch(/^usage: fastsuspend metrics \[--output FILE\]/);
    expect(help).toMatch(/textfile collector/);
    expect(help).not.toMatch(/DOM is a domain name/);
    const file = join(dir, "kept.prom");
    writeFileSync(file, "old\n");
    const forced = deps();
    expect(await run(["metrics", "--no-daemon"], forced)).toBe(EXIT.environment);
    await svc.stop();
    const d = deps();
    expect(await run(["metrics", "--output", file], d)).toBe(EXIT.environment);
    expect(d.err.join("")).toMatch(/metrics: fastsuspendd is not running/);
    expect(readFileSync(file, "utf8")).toBe("old\n");
    expect(d.direct).toBe(0);
  });
});

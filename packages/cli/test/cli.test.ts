// The CLI on the fake host: parsing, exit codes, one-line errors, the table.
import { EventEmitter } from "node:events";
import { readFileSync } from "node:fs";
import { join } from "node:path";

import { CoordinatorError, summarize } from "@fastsuspend/coordinator";
import { DaemonError } from "@fastsuspend/daemon/client";
import { FakeWorld } from "@fastsuspend/coordinator/testing";
import { XenUnavailableError } from "@fastsuspend/xen";

import { COMMANDS, EXIT, exitCodeFor, formatTable, parseCli, run, USAGE, type BenchResult, type CheckpointLoopResult, type Deps, type ToolstackResult } from "../src";
import { vsStock } from "../src/format";
import { EnvironmentError } from "../src/exit-codes";
import { mediansPerBlock } from "../src/commands";
import { commandHelp } from "../src/usage";

let world: FakeWorld;
beforeEach(async () => {
  world = await FakeWorld.create();
});
afterEach(async () => {
  await world.close();
});

function deps(over: Partial<Deps> = {}): Deps & { out: string[]; err: string[]; files: Map<string, string> } {
  const out: string[] = [];
  const err: string[] = [];
  const files = new Map<string, string>();
  return {
    out,
    err,
    files,
    openEnv: () => Promise.resolve({ xen: world.binding(), xs: world.xenstore, close: () => Promise.resolve() }),
    stdout: (t) => out.push(t),
    stderr: (t) => err.push(t),
    writeFile: (p, t) => files.set(p, t),
    readText: (p) => ({ "/sys/hypervisor/version/major": "4", "/sys/hypervisor/version/minor": "17", "/sys/hypervisor/version/extra": ".7", "/var/run/xenstored.flavour": "oxenstored" })[p],
    spawnTimed: () => Promise.resolve({ code: 0, ms: 1200, stderr: "" }),
    signals: new EventEmitter(),
    ...over,
  };
}

const activeTimers = (): number => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;

/**
 * The active timers once those of the fake guests have run out (up to 1 s): right after a loop
 * their own may still be in flight (CI saw 3 > 2 under load), while a timer the CLI left behind
 * (a 600 s budget, a progress interval) never goes away.
 */
async function timersSettledTo(before: number): Promise<number> {
  for (let i = 0; i < 100 && activeTimers() > before; i++) await new Promise((r) => setTimeout(r, 10));
  return activeTimers();
}

describe("argument parsing", () => {
  it("parses each command", () => {
    expect(parseCli(["suspend", "7", "--path", "xenstore+watch", "--timeout", "500"])).toMatchObject({ command: "suspend", domid: 7, path: "xenstore+watch", timeoutMs: 500 });
    expect(parseCli(["resume", "7", "--full"])).toMatchObject({ command: "resume", full: true });
    expect(parseCli(["checkpoint", "3", "--interval", "0", "--count", "10"])).toMatchObject({ intervalMs: 0, count: 10 });
    expect(parseCli(["checkpoint", "3", "--interval", "0", "--count", "10", "--for", "600"])).toMatchObject({ count: 10, forSeconds: 600 });
    expect(parseCli(["checkpoint", "3", "--interval", "0", "--count", "10"]).forSeconds).toBeUndefined();
    expect(parseCli(["bench-run", "3", "--cycles", "5", "--paths", "xenstore+watch,evtchn+evtchn", "--output", "out.json"])).toMatchObject({ cycles: 5, paths: ["xenstore+watch", "evtchn+evtchn"], output: "out.json", json: false });
    // --json is a switch everywhere; bench-run's file is --output (issue 16).
    expect(() => parseCli(["bench-run", "3", "--cycles", "5", "--json", "out.json"])).toThrow(/unexpected argument "out.json"|only applies to/);
    expect(() => parseCli(["bench-run", "3", "--cycles", "5"])).toThrow(/--output FILE is required/);
    expect(() => parseCli(["checkpoint", "3", "--interval", "0", "--count", "1", "--output", "x"])).toThrow(/--output only applies to metrics, bench-run/);
    expect(parseCli(["--help"]).command).toBe("help");
  });

  it("takes DOM as an id (all digits, as xl reads it) or a name", () => {
    expect(parseCli(["suspend", "7"])).toMatchObject({ domid: 7 });
    expect(parseCli(["suspend", "007"])).toMatchObject({ domid: 7 });
    expect(parseCli(["suspend", "7"]).domName).toBeUndefined();
    expect(parseCli(["suspend", "guest1"])).toMatchObject({ domid: -1, domName: "guest1" });
    expect(parseCli(["status", "web-2"])).toMatchObject({ command: "status", domName: "web-2" });
    expect(parseCli(["checkpoint", "db", "--interval", "0", "--count", "1"])).toMatchObject({ domName: "db" });
  });

  it.each([
    [[], /missing COMMAND/],
    [["frobnicate", "1"], /unknown command "frobnicate"/],
    [["suspend"], /suspend: missing DOM/],
    [["suspend", "32752"], /suspend: a domain id is at most 32751, got 32752/],
    [["suspend", ""], /suspend: DOM is empty/],
    [["suspend", "7", "--timeout", "soon"], /--timeout must be a non-negative integer/],
    [["checkpoint", "7", "--count", "3"], /--interval MS is required/],
    [["checkpoint", "7", "--interval", "0", "--count", "3", "--for", "0"], /--for must be at least 1, got 0/],
    [["checkpoint", "7", "--interval", "0", "--count", "3", "--for", "1.5"], /--for must be a non-negative integer, got "1.5"/],
    // Past setTimeout's 2^31 - 1 ms the budget would elapse at once.
    [["checkpoint", "7", "--interval", "0", "--count", "3", "--for", "2147484"], /--for must be at most 2147483, got 2147484/],
    [["suspend", "7", "--for", "5"], /suspend: --for only applies to checkpoint/],
    [["bench-run", "7", "--cycles", "3"], /--output FILE is required/],
    [["suspend", "7", "--full"], /--full only applies to resume/],
    [["suspend", "7", "--bogus"], /Unknown option '--bogus'/],
    // parseArgs' other errors: a value missing, a value given to a switch.
    [["suspend", "7", "--timeout"], /Option '--timeout <value>' argument missing/],
    [["suspend", "7", "--full=yes"], /Option '--full' does not take an argument/],
    // A flag the command does not take is refused, not silently ignored.
    [["suspend", "7", "--cycles", "3"], /suspend: --cycles only applies to bench-run/],
    [["resume", "7", "--timeout", "100"], /resume: --timeout only applies to suspend, checkpoint, bench-run/],
    [["status", "--progress"], /status: --progress only applies to checkpoint/],
    // Unknown path names were a failed operation (exit 1) once Xen was open.
    [["suspend", "7", "--path", "evtchn+nope"], /--path: unknown path "evtchn\+nope" \(known: evtchn\+virq, /],
    [["bench-run", "7", "--cycles", "1", "--output", "f", "--paths", "xenstore+watch,bogus"], /--paths: unknown path "bogus"/],
    [["status", "1", "2"], /status: unexpected argument "2"/],
    [["help", "frobnicate"], /unknown command "frobnicate"/],
    [["help", "suspend", "resume"], /help: unexpected argument "resume"/],
    [["bench", "--help"], /npm run bench/],
  ])("%j is a usage error", async (argv, msg) => {
    const d = deps();
    expect(await run(argv, d)).toBe(EXIT.usage);
    expect(d.err[0]).toMatch(msg);
    expect(d.err[0]).toMatch(/^fastsuspend: /);
  });
});

describe("commands on the fake host", () => {
  it("info prints capabilities and the chosen path; --json too", async () => {
    const g = await world.addGuest({ channel: "ok" });
    const d = deps();
    expect(await run(["info", String(g.domid)], d)).toBe(EXIT.ok);
    expect(d.out.join("")).toMatch(/guest suspend channel: ok \(port \d+\)[\s\S]*would use: evtchn\+evtchn/);
    const j = deps();
    expect(await run(["info", String(g.domid), "--json"], j)).toBe(EXIT.ok);
    expect(JSON.parse(j.out.join(""))).toMatchObject({ domid: g.domid, chosen: "evtchn+evtchn" });
  });

  it("suspend leaves it suspended; resume brings it back", async () => {
    const g = await world.addGuest();
    const d = deps();
    expect(await run(["suspend", String(g.domid)], d)).toBe(EXIT.ok);
    expect(d.out[0]).toMatch(new RegExp(`domain ${g.domid} suspended via xenstore\\+evtchn in [0-9.]+ ms`));
    expect(world.domainState(g.domid)).toBe("suspended");
    expect(world.xen.suspendLockExists(g.domid)).toBe(false);
    expect(world.subscription(g.domid)).toBe(0);
    expect(await run(["resume", String(g.domid)], deps())).toBe(EXIT.ok);
    expect(world.domainState(g.domid)).toBe("running");
  });

  it("exit 3 for dom0, an unknown domain, no Xen; exit 1 for a timeout and a held lock", async () => {
    const cases: [string[], number, RegExp][] = [
      [["suspend", "0"], EXIT.environment, /domain 0 is the control domain/],
      [["suspend", "999"], EXIT.environment, /domain 999 does not exist/],
      [["info", "999"], EXIT.environment, /domain 999 does not exist/],
    ];
    for (const [argv, code, msg] of cases) {
      const d = deps();
      expect(await run(argv, d)).toBe(code);
      expect(d.err.join("")).toMatch(msg);
    }
    const noXen = deps({ openEnv: () => Promise.reject(new XenUnavailableError("no-xen", { call: "openXen", args: "", errno: 0, code: "ERR_NO_XEN", message: "no /dev/xen: not running in a Xen dom0" })) });
    expect(await run(["info", "1"], noXen)).toBe(EXIT.environment);
    expect(noXen.err[0]).toBe("fastsuspend: no /dev/xen: not running in a Xen dom0\n");
    const notRoot = deps({ openEnv: () => Promise.reject(new EnvironmentError("must run as root")) });
    expect(await run(["info", "1"], notRoot)).toBe(EXIT.environment);

    const g = await world.addGuest({ answersXenstore: false });
    const t = deps();
    expect(await run(["suspend", String(g.domid), "--path", "xenstore+watch", "--timeout", "50"], t)).toBe(EXIT.failed);
    expect(t.err.join("")).toMatch(/did not suspend within 50 ms via xenstore\+watch \(request withdrawn\); it is left running/);
    expect(world.domainState(g.domid)).toBe("running");

    const release = world.xen.holdSuspendLockElsewhere(g.domid);
    const l = deps();
    expect(await run(["suspend", String(g.domid)], l)).toBe(EXIT.failed);
    expect(l.err.join("")).toMatch(/held by another process/);
    release();
  });

  it("exit codes follow the error's code, from the coordinator or the daemon, never its text", async () => {
    const d = deps();
    // Unknown domain on resume: ENODOMAIN (it was EDOMAIN, "destroyed before resume", exit 1).
    expect(await run(["resume", "999"], d)).toBe(EXIT.environment);
    expect(d.err.join("")).toMatch(/domain 999 was destroyed before resume/);
    for (const code of ["ENODOMAIN", "EDYING", "ECONTROLDOMAIN"] as const) {
      expect([code, exitCodeFor(new CoordinatorError(code, 3, "x"))]).toEqual([code, EXIT.environment]);
      expect([code, exitCodeFor(new DaemonError(code, "x"))]).toEqual([code, EXIT.environment]);
    }
    // The words of the old regex under other codes are failures, not the environment.
    expect(exitCodeFor(new DaemonError("EINVAL", "domain 0 is the control domain"))).toBe(EXIT.failed);
    expect(exitCodeFor(new CoordinatorError("ESUSPENDED", 3, "domain 3 does not exist, is dying"))).toBe(EXIT.failed);
    expect(exitCodeFor(new CoordinatorError("ENOTSUSPENDED", 3, "x"))).toBe(EXIT.failed);
  });

  it("resume of a running domain is an operation failure", async () => {
    const g = await world.addGuest();
    const d = deps();
    expect(await run(["resume", String(g.domid)], d)).toBe(EXIT.failed);
    expect(d.err[0]).toMatch(/is not suspended: nothing to resume/);
  });

  it("checkpoint runs N cycles and SIGINT leaves the guest running (exit 130)", async () => {
    const g = await world.addGuest();
    const d = deps();
    expect(await run(["checkpoint", String(g.domid), "--interval", "1", "--count", "4"], d)).toBe(EXIT.ok);
    expect(d.out[0]).toMatch(/4\/4 checkpoints via xenstore\+evtchn/);

    const signals = new EventEmitter();
    let exited = -1;
    const s = deps({ signals, exit: (c) => { exited = c; } });
    const p = run(["checkpoint", String(g.domid), "--interval", "0", "--count", "100000"], s);
    await new Promise((r) => setTimeout(r, 50));
    signals.emit("SIGINT", "SIGINT");
    await p;
    expect(exited).toBe(130);
    expect(world.domainState(g.domid)).toBe("running");
    expect(world.xen.suspendLockExists(g.domid)).toBe(false);
    expect(s.err.join("")).toMatch(/SIGINT: checkpoint loop stopped, domain \d+ left running/);
  });

  it("checkpoint --json gives the medians per 100 and per 1000 cycles and why the loop stopped", async () => {
    const g = await world.addGuest();
    const d = deps();
    expect(await run(["checkpoint", String(g.domid), "--interval", "0", "--count", "3", "--json"], d)).toBe(EXIT.ok);
    const j = JSON.parse(d.out.join("")) as Record<string, unknown>;
    expect(j).toMatchObject({ ok: 3, requested: 3, stoppedBy: "count" });
    expect(j.totalMsPerHundred).toHaveLength(1);
    expect(j.totalMsPerThousand).toEqual(j.totalMsPerHundred);
    expect(j).not.toHaveProperty("budgetSeconds");
  });

  it("checkpoint --for stops the loop after the cycle in flight once the budget elapses: not a failure", async () => {
    const g = await world.addGuest({ suspendDelayMs: 3 });
    const d = deps();
    const t0 = Date.now();
    expect(await run(["checkpoint", String(g.domid), "--interval", "0", "--count", "100000", "--for", "1", "--json"], d)).toBe(EXIT.ok);
    expect(Date.now() - t0).toBeLessThan(5000);
    const j = JSON.parse(d.out.join("")) as { ok: number; failed: number; requested: number; stoppedBy: string; budgetSeconds: number };
    expect(j).toMatchObject({ requested: 100000, failed: 0, stoppedBy: "time", budgetSeconds: 1 });
    expect(j.ok).toBeGreaterThan(0);
    expect(j.ok).toBeLessThan(100000);
    // The cycle in flight was finished: the guest is running and nothing is held.
    expect(world.domainState(g.domid)).toBe("running");
    expect(world.xen.suspendLockExists(g.domid)).toBe(false);

    const text = deps();
    expect(await run(["checkpoint", String(g.domid), "--interval", "0", "--count", "100000", "--for", "1"], text)).toBe(EXIT.ok);
    expect(text.out[0]).toMatch(/checkpoints via .*; stopped by its 1 s budget\n$/);
  });

  it("checkpoint --for clears its timer when the loop ends first (no timer keeps the CLI alive)", async () => {
    const g = await world.addGuest();
    const before = activeTimers();
    const d = deps();
    expect(await run(["checkpoint", String(g.domid), "--interval", "0", "--count", "2", "--for", "600", "--json"], d)).toBe(EXIT.ok);
    expect(JSON.parse(d.out.join(""))).toMatchObject({ ok: 2, stoppedBy: "count", budgetSeconds: 600 });
    expect(await timersSettledTo(before)).toBeLessThanOrEqual(before);
  });

  it("SIGHUP (the ssh session dropped) mid-loop or mid-suspend leaves the guest running, like SIGINT (exit 129)", async () => {
    const g = await world.addGuest();
    const signals = new EventEmitter();
    let exited = -1;
    const s = deps({ signals, exit: (c) => { exited = c; } });
    const p = run(["checkpoint", String(g.domid), "--interval", "0", "--count", "100000"], s);
    await new Promise((r) => setTimeout(r, 50));
    signals.emit("SIGHUP", "SIGHUP");
    await p;
    expect(exited).toBe(129);
    expect(world.domainState(g.domid)).toBe("running");
    expect(world.xen.suspendLockExists(g.domid)).toBe(false);
    expect(s.err.join("")).toMatch(/SIGHUP: checkpoint loop stopped, domain \d+ left running/);

    // A suspend the guest takes its time over: the hangup withdraws it and the guest ends up running.
    const slow = await world.addGuest({ suspendDelayMs: 100 });
    const sig2 = new EventEmitter();
    let exited2 = -1;
    const s2 = deps({ signals: sig2, exit: (c) => { exited2 = c; } });
    const p2 = run(["suspend", String(slow.domid)], s2);
    await new Promise((r) => setTimeout(r, 30));
    sig2.emit("SIGHUP", "SIGHUP");
    await p2.catch(() => undefined);
    for (let i = 0; i < 100 && exited2 < 0; i++) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 150));
    expect(exited2).toBe(129);
    expect(world.domainState(slow.domid)).toBe("running");
  });

  it("bench-run writes the JSON and prints the table", async () => {
    const g = await world.addGuest({ channel: "ok" });
    const d = deps();
    const code = await run(["bench-run", String(g.domid), "--cycles", "3", "--interval", "1", "--paths", "xenstore+watch,evtchn+evtchn", "--output", "/tmp/b.json", "--xl-save", "2"], d);
    expect(code).toBe(EXIT.ok);
    const j = JSON.parse(d.files.get("/tmp/b.json") ?? "{}") as BenchResult;
    expect(j).toMatchObject({ xen: "4.17.7", xenstored: "oxenstored", domid: g.domid, cycles: 3 });
    expect(j.paths.map((p) => [p.name, p.ok, p.failed])).toEqual([["xenstore+watch", 3, 0], ["evtchn+evtchn", 3, 0]]);
    expect(j.paths[0]?.samples.totalMs).toHaveLength(3);
    expect(Object.keys(j.paths[0]?.suspendMs ?? {})).toEqual(["n", "avg", "min", "max", "median", "p99"]);
    expect(j.xlSaveCMs).toMatchObject({ n: 2, median: 1200, failed: 0 });
    expect(d.out.join("")).toMatch(/evtchn\+evtchn\s+3\/3/);
  });

  it("bench-run on oxenstored: libxl's path keeps XS_RESUME in the cycle as libxl does, the others take the default (auto: skipped)", async () => {
    const g = await world.addGuest({ channel: "ok" });
    await world.xenstore.write("/tool/xenstored", "/usr/lib/xen-4.17/bin/oxenstored");
    try {
      const d = deps();
      expect(await run(["bench-run", String(g.domid), "--cycles", "2", "--interval", "0", "--paths", "xenstore+watch,evtchn+evtchn", "--output", "/tmp/b.json", "--xl-save", "0"], d)).toBe(EXIT.ok);
      const j = JSON.parse(d.files.get("/tmp/b.json") ?? "{}") as BenchResult;
      expect(j.paths.map((p) => [p.name, p.xsResume])).toEqual([["xenstore+watch", "inline"], ["evtchn+evtchn", "skip"]]);
      expect(j.paths[1]?.phases?.xsResumeMs.max).toBe(0);
      const d2 = deps();
      expect(await run(["bench-run", String(g.domid), "--cycles", "2", "--interval", "0", "--paths", "xenstore+watch,evtchn+evtchn", "--output", "/tmp/b.json", "--xl-save", "0", "--xs-resume", "inline"], d2)).toBe(EXIT.ok);
      expect((JSON.parse(d2.files.get("/tmp/b.json") ?? "{}") as BenchResult).paths.map((p) => p.xsResume)).toEqual(["inline", "inline"]);
      const d3 = deps();
      expect(await run(["checkpoint", String(g.domid), "--interval", "0", "--count", "2", "--json"], d3)).toBe(EXIT.ok);
      expect(JSON.parse(d3.out.join(""))).toMatchObject({ ok: 2, xsResume: "skip" });
    } finally {
      await world.xenstore.write("/tool/xenstored", "");
    }
  });

  it("bench-run runs every cycle of a path whatever fails (no failure budget), and lists the first errors", async () => {
    const g = await world.addGuest({ channel: "ok", answersXenstore: false });
    const d = deps();
    const code = await run(["bench-run", String(g.domid), "--cycles", "7", "--interval", "0", "--timeout", "20", "--paths", "xenstore+poll,evtchn+poll", "--output", "/tmp/b.json", "--xl-save", "0"], d);
    expect(code).toBe(EXIT.failed);
    const j = JSON.parse(d.files.get("/tmp/b.json") ?? "{}") as BenchResult;
    expect(j.paths.map((p) => [p.name, p.ok, p.failed])).toEqual([["xenstore+poll", 0, 7], ["evtchn+poll", 7, 0]]);
    expect(j.paths[0]?.errors).toHaveLength(5);
    expect(j.paths[0]?.errors[0]).toMatch(/did not suspend within 20 ms/);
    expect(world.domainState(g.domid)).toBe("running");
  });

  it("bench-run measures the seed's paths the domain supports by default, and saves after each path", async () => {
    const g = await world.addGuest({ channel: "ok" });
    const writes: string[] = [];
    const d = deps({ writeFile: (_p, t) => writes.push(t) });
    const code = await run(["bench-run", String(g.domid), "--cycles", "2", "--interval", "0", "--output", "/tmp/b.json", "--xl-save", "0"], d);
    expect(code).toBe(EXIT.ok);
    const names = (JSON.parse(writes.at(-1) ?? "{}") as BenchResult).paths.map((p) => p.name);
    // No hypervisor patch in the fake world: the *+virq paths are not offered, nor evtchn+watch/poll.
    expect(names).toEqual(["xenstore+watch", "xenstore+poll", "xenstore+evtchn", "evtchn+evtchn"]);
    // One write per path, then the final one with xl save.
    expect(writes).toHaveLength(names.length + 1);
    expect((JSON.parse(writes[0] ?? "{}") as BenchResult).paths.map((p) => p.name)).toEqual(["xenstore+watch"]);
  });

  it("bench is not a dom0 command: it says where the host side went", async () => {
    const d = deps();
    expect(await run(["bench", "--cycles", "x"], d)).toBe(EXIT.usage);
    expect(d.err[0]).toMatch(/npm run bench/);
  });
});

describe("domain names, resolved through xenstore as xl does", () => {
  const name = (domid: number, n: string): Promise<void> => world.xs.write(`/local/domain/${domid}/name`, n);

  it("every command that takes DOM takes a name", async () => {
    const web = await world.addGuest({ channel: "ok" });
    const db = await world.addGuest();
    await name(web.domid, "web");
    await name(db.domid, "db");
    const i = deps();
    expect(await run(["info", "web", "--json"], i)).toBe(EXIT.ok);
    expect(JSON.parse(i.out.join(""))).toMatchObject({ domid: web.domid });
    expect(await run(["suspend", "db"], deps())).toBe(EXIT.ok);
    expect(world.domainState(db.domid)).toBe("suspended");
    expect(world.domainState(web.domid)).toBe("running");
    const r = deps();
    expect(await run(["resume", "db"], r)).toBe(EXIT.ok);
    expect(r.out[0]).toMatch(new RegExp(`^domain ${db.domid} resumed`));
    const c = deps();
    expect(await run(["checkpoint", "web", "--interval", "0", "--count", "2"], c)).toBe(EXIT.ok);
    expect(c.out[0]).toMatch(new RegExp(`^domain ${web.domid}: 2/2 checkpoints`));
    const b = deps();
    expect(await run(["bench-run", "db", "--cycles", "1", "--paths", "xenstore+watch", "--output", "/tmp/b.json", "--xl-save", "0"], b)).toBe(EXIT.ok);
    expect(JSON.parse(b.files.get("/tmp/b.json") ?? "{}")).toMatchObject({ domid: db.domid });
  });

  it("a name no domain has is exit 3 and names the input; a name two domains have is a usage error", async () => {
    const a = await world.addGuest();
    const b = await world.addGuest();
    await name(a.domid, "twin");
    await name(b.domid, "twin");
    const unknown = deps();
    expect(await run(["suspend", "nosuch"], unknown)).toBe(EXIT.environment);
    expect(unknown.err[0]).toMatch(/^fastsuspend: no such domain "nosuch"/);
    const twin = deps();
    expect(await run(["suspend", "twin"], twin)).toBe(EXIT.usage);
    expect(twin.err[0]).toBe(`fastsuspend: domain name "twin" is ambiguous: domains ${a.domid}, ${b.domid} have it; give the id\n`);
    expect(world.domainState(a.domid)).toBe("running");
    expect(world.domainState(b.domid)).toBe("running");
  });

  it("a dying domain does not make its replacement's name ambiguous (xl destroy, then xl create)", async () => {
    const old = await world.addGuest();
    const fresh = await world.addGuest();
    await name(old.domid, "web");
    await name(fresh.domid, "web");
    const dying = world.xen.hv.domains.get(old.domid);
    if (dying === undefined) throw new Error("no domain");
    dying.dying = true;
    const d = deps();
    expect(await run(["info", "web", "--json"], d)).toBe(EXIT.ok);
    expect(JSON.parse(d.out.join(""))).toMatchObject({ domid: fresh.domid });
  });

  it("Domain-0 resolves to 0, which is refused as the control domain (exit 3)", async () => {
    await name(0, "Domain-0");
    const d = deps();
    expect(await run(["suspend", "Domain-0"], d)).toBe(EXIT.environment);
    expect(d.err[0]).toMatch(/domain 0 is the control domain/);
  });

  it("Xen is opened once and closed once, also to resolve a name", async () => {
    const g = await world.addGuest();
    await name(g.domid, "web");
    let opened = 0;
    let closed = 0;
    const d = deps({
      openEnv: () => {
        opened++;
        return Promise.resolve({ xen: world.binding(), xs: world.xenstore, close: () => { closed++; return Promise.resolve(); } });
      },
    });
    expect(await run(["info", "web"], d)).toBe(EXIT.ok);
    expect([opened, closed]).toEqual([1, 1]);
  });
});

describe("help, --version and the note on xl pause", () => {
  it("--version prints the package's version", async () => {
    const pkg = JSON.parse(readFileSync(join(__dirname, "..", "package.json"), "utf8")) as { version: string };
    const d = deps();
    expect(await run(["--version"], d)).toBe(EXIT.ok);
    expect(d.out).toEqual([`fastsuspend ${pkg.version}\n`]);
  });

  it("`help CMD` and `CMD --help` print the command's help, which lists its flags", async () => {
    const viaHelp = deps();
    expect(await run(["help", "checkpoint"], viaHelp)).toBe(EXIT.ok);
    const viaFlag = deps();
    expect(await run(["checkpoint", "--help"], viaFlag)).toBe(EXIT.ok);
    expect(viaFlag.out).toEqual(viaHelp.out);
    const text = viaHelp.out.join("");
    expect(text).toMatch(/^usage: fastsuspend checkpoint DOM --interval MS --count N/);
    for (const f of ["--interval MS", "--count N", "--for SECONDS", "--progress", "--xs-resume MODE", "--no-daemon"]) expect(text).toContain(f);
    // Another command's flag is not listed.
    expect(text).not.toContain("--cycles");
  });

  it("bench-run's help lists its flags, --output taking FILE", async () => {
    const d = deps();
    expect(await run(["help", "bench-run"], d)).toBe(EXIT.ok);
    const text = d.out.join("");
    for (const f of ["--cycles N", "--output FILE", "--paths A,B,...", "--interval MS", "--xl-save N", "--guest-kernel S", "--timeout MS"]) expect(text).toContain(f);
    expect(text).toMatch(/npm run bench/);
  });

  it.each(COMMANDS)("%s accepts exactly the flags its help lists", (command) => {
    const help = commandHelp(command);
    const argv = (flag: string): string[] => {
      const base = command === "status" || command === "metrics" ? [command] : [command, "7"];
      return [...base, `--${flag}`, ...(flag === "full" || flag === "fallback" || flag === "no-daemon" || flag === "progress" || flag === "json" ? [] : ["1"])];
    };
    for (const flag of ["json", "path", "timeout", "full", "interval", "count", "for", "cycles", "paths", "xs-resume", "fallback", "xl-save", "guest-kernel", "no-daemon", "progress", "output"]) {
      let refused = false;
      try {
        parseCli(argv(flag));
      } catch (err) {
        refused = /only applies to/.test(String(err));
      }
      expect([flag, refused]).toEqual([flag, !new RegExp(`--${flag}\\b`).test(help)]);
    }
  });

  it("a bare `help` or --help prints the overview: every command, DOM as a name or id, exit codes", async () => {
    for (const argv of [["help"], ["--help"], ["-h"]]) {
      const d = deps();
      expect(await run(argv, d)).toBe(EXIT.ok);
      const text = d.out.join("");
      for (const c of COMMANDS) expect(text).toContain(`  ${c}`);
      expect(text).toMatch(/DOM is a domain name or id/);
      expect(text).toMatch(/2 bad usage/);
    }
  });

  it("no help line is wider than 100 columns", () => {
    for (const text of [USAGE, ...COMMANDS.map((c) => commandHelp(c))]) {
      for (const line of text.split("\n")) expect([line, line.length <= 100]).toEqual([line, true]);
    }
  });

  it("says that suspend and resume are not xl pause and unpause, in the overview and in their help", () => {
    for (const text of [USAGE, commandHelp("suspend"), commandHelp("resume")]) {
      expect(text).toMatch(/suspend and resume are not `xl pause` \/ `xl unpause`/);
      expect(text).toMatch(/shuts down with reason "suspend"/);
      expect(text).toMatch(/cooperative resume/);
    }
  });
});

describe("checkpoint progress on stderr", () => {
  const progressLines = (err: string[]): string[] => err.filter((l) => /checkpoint on domain \d+: /.test(l));

  it("--progress prints done/ok/failed/rate lines while the loop runs, and --json stdout stays the JSON alone", async () => {
    const g = await world.addGuest();
    const d = deps({ progressEveryMs: 20 });
    expect(await run(["checkpoint", String(g.domid), "--interval", "5", "--count", "30", "--progress", "--json"], d)).toBe(EXIT.ok);
    const lines = progressLines(d.err);
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) expect(l).toMatch(new RegExp(`^fastsuspend: checkpoint on domain ${g.domid}: \\d+/30 done, \\d+ ok, 0 failed, [0-9.]+/s\\n$`));
    expect(d.out).toHaveLength(1);
    expect(JSON.parse(d.out[0] ?? "")).toMatchObject({ ok: 30 });
  });

  it("on by default when stderr is a terminal; off otherwise; no timer left behind", async () => {
    const g = await world.addGuest();
    const tty = deps({ progressEveryMs: 20, stderrIsTTY: true });
    expect(await run(["checkpoint", String(g.domid), "--interval", "5", "--count", "20"], tty)).toBe(EXIT.ok);
    expect(progressLines(tty.err).length).toBeGreaterThan(0);
    const before = activeTimers();
    const pipe = deps({ progressEveryMs: 20, stderrIsTTY: false });
    expect(await run(["checkpoint", String(g.domid), "--interval", "5", "--count", "20"], pipe)).toBe(EXIT.ok);
    expect(progressLines(pipe.err)).toEqual([]);
    expect(await timersSettledTo(before)).toBeLessThanOrEqual(before);
  });
});

describe("formatTable", () => {
  const path = (name: string, med: number): BenchResult["paths"][number] => {
    const s = summarize([med - 1, med, med + 1]);
    return { name, n: 3, ok: 3, failed: 0, suspendMs: s, resumeMs: summarize([4, 5, 6]), totalMs: s, samples: { suspendMs: [], resumeMs: [], totalMs: [] }, errors: [] };
  };

  it("adds the guest's own view of each path, slowest steps first, when the bench host has it", () => {
    const guestMs = {
      n: 3, suspend: summarize([11, 12, 13]), resume: summarize([14, 15, 16]),
      steps: { dpm_suspend: summarize([1]), xs_resume: summarize([9]), freeze_processes: summarize([3]), thaw_processes: summarize([2]) },
    };
    const text = formatTable({ paths: [{ ...path("evtchn+evtchn", 12), guestMs }, path("xenstore+watch", 48)], xlSaveCMs: null });
    expect(text).toContain("the guest's own clock");
    expect(text).toContain("  evtchn+evtchn: guest suspend med 12.0 (p99 13.0), resume med 15.0 (p99 16.0); slowest steps: xs_resume 9.0, freeze_processes 3.0, thaw_processes 2.0 (n=3)");
    expect(text).not.toMatch(/xenstore\+watch: guest/);
    expect(formatTable({ paths: [path("xenstore+watch", 48)], xlSaveCMs: null })).not.toContain("own clock");
  });

  it("names a checkpoint loop on a fast-suspend guest as such", () => {
    const loop: CheckpointLoopResult = { path: "evtchn+virq", xsResume: "inline", requested: 10, ok: 10, failed: 0, errors: [], elapsedMs: 200, cyclesPerSecond: 50, totalMs: summarize([20]), guestSuspend: "fast" };
    expect(formatTable({ paths: [], xlSaveCMs: null, checkpointLoops: [loop] })).toContain("--count 10 (fast-suspend guest), XS_RESUME inline: 10 ok");
    expect(formatTable({ paths: [], xlSaveCMs: null, checkpointLoops: [{ ...loop, guestSuspend: undefined }] })).not.toContain("fast-suspend");
  });

  it("prints five statistics per column group and ratios to the baseline", () => {
    const text = formatTable({ xen: "4.17.7", guestKernel: "stock", xenstored: "oxenstored", paths: [path("xenstore+watch", 48), path("evtchn+evtchn", 12)], xlSaveCMs: null });
    const lines = text.split("\n");
    expect(lines[0]).toBe("xen 4.17.7, oxenstored, guest stock");
    expect(lines[1]).toMatch(/^path\s+ok\/n\s+susp avg\s+susp min\s+susp max\s+susp med\s+susp p99\s+res avg.*cyc p99\s+vs xenstore\+watch$/);
    expect(lines[2]).toMatch(/^xenstore\+watch\s+3\/3\s+48\.0\s+47\.0\s+49\.0\s+48\.0\s+49\.0\s+5\.0\s+4\.0\s+6\.0\s+5\.0\s+6\.0\s+48\.0.*1\.00x$/);
    expect(lines[3]).toMatch(/^evtchn\+evtchn .* 0\.25x$/);
  });

  it("sets each patched toolstack row against the stock row of the same tool and guest type (issue 14's targets)", () => {
    const row = (tool: string, guestKernel: string, blackout: number, guestType: "pv" | "pvh" = "pvh", perSecond?: number): ToolstackResult => ({
      tool, guestKernel, hypervisor: "h", guestType, n: 3, ok: 3, failed: 0, blackoutMs: summarize([blackout]), totalMs: summarize([100]),
      phases: { setupMs: summarize([1]), suspendMs: summarize([2]), saveAndResumeMs: summarize([3]) }, errors: [], ...(perSecond === undefined ? {} : { perSecond }),
    });
    const rows = [row("xl remus -b -i 25", "stock 6.1", 200, "pvh", 5), row("xl remus -b -i 25", "patched 6.1", 40, "pvh", 16), row("xl migrate", "patched 6.1", 50), row("xl migrate", "stock 6.1", 80, "pv")];
    expect(vsStock(rows[1] as ToolstackResult, rows)).toBe("; vs stock: blackout 0.20x, rate 3.20x");
    expect(vsStock(rows[0] as ToolstackResult, rows)).toBe("");
    // A stock row of another guest type is not the baseline.
    expect(vsStock(rows[2] as ToolstackResult, rows)).toBe("");
    expect(formatTable({ paths: [], xlSaveCMs: null, toolstack: rows })).toContain("vs stock: blackout 0.20x, rate 3.20x");
  });

  it("sets a row against the stock row on its own hypervisor, and prints one block per hypervisor", () => {
    const row = (guestKernel: string, hypervisor: string, blackout: number): ToolstackResult => ({
      tool: "xl migrate", guestKernel, hypervisor, guestType: "pvh", n: 3, ok: 3, failed: 0, blackoutMs: summarize([blackout]), totalMs: summarize([100]),
      phases: { setupMs: summarize([1]), suspendMs: summarize([2]), saveAndResumeMs: summarize([3]) }, errors: [],
    });
    const rows = [row("stock 6.12", "Debian 4.20", 100), row("patched 6.12", "Debian 4.20", 50), row("stock 6.12", "patched 4.20", 400), row("patched 6.12", "patched 4.20", 100)];
    expect(vsStock(rows[1] as ToolstackResult, rows)).toBe("; vs stock: blackout 0.50x");
    expect(vsStock(rows[3] as ToolstackResult, rows)).toBe("; vs stock: blackout 0.25x");
    const text = formatTable({ paths: [], xlSaveCMs: null, toolstack: rows }).split("\n");
    const debian = text.indexOf("stock xl on Debian 4.20, measured by the guest (medians in ms):");
    const patched = text.indexOf("stock xl on patched 4.20, measured by the guest (medians in ms):");
    expect(debian).toBeGreaterThanOrEqual(0);
    expect(patched).toBe(debian + 3);
    expect(text[patched + 2]).toContain("0.25x");
  });

  it("splits suspended -> exit where the save helper sent the memory, when it did", () => {
    const row: ToolstackResult = {
      tool: "xl save -c", guestKernel: "patched 6.12", hypervisor: "h", guestType: "pvh", n: 2, ok: 2, failed: 0, blackoutMs: summarize([1500]), totalMs: summarize([2000]),
      phases: { setupMs: summarize([1]), suspendMs: summarize([2]), saveAndResumeMs: summarize([900]), memoryMs: summarize([700]), afterMemoryMs: summarize([200]) }, errors: [],
    };
    expect(formatTable({ paths: [], xlSaveCMs: null, toolstack: [row] })).toContain("then 900.0 to exit (memory sent 700.0, then 200.0 to exit)");
    expect(formatTable({ paths: [], xlSaveCMs: null, toolstack: [{ ...row, phases: { ...row.phases, memoryMs: summarize([]) } }] })).not.toContain("memory sent");
    const remus = { ...row, tool: "xl remus -b -i 25", perSecond: 10 };
    expect(formatTable({ paths: [], xlSaveCMs: null, toolstack: [remus] })).toContain("suspended -> next request med 900.0 (memory sent 700.0, then 200.0 to the next request)");
  });

  it("says a row's stalls apart from its blackout, and only when there were any", () => {
    const row: ToolstackResult = {
      tool: "xl migrate", guestKernel: "patched 6.12", hypervisor: "h", guestType: "pvh", n: 2, ok: 2, failed: 0, blackoutMs: summarize([1500, 1700]),
      stallsMs: summarize([9000, 11000]), totalMs: summarize([20000]), phases: { setupMs: summarize([1]), suspendMs: summarize([2]), saveAndResumeMs: summarize([3]) }, errors: [],
    };
    expect(formatTable({ paths: [], xlSaveCMs: null, toolstack: [row] })).toContain("guest blackout med 1600.0 (p99 1700.0), stalled outside it med 10000.0 (max 11000.0); libxl");
    expect(formatTable({ paths: [], xlSaveCMs: null, toolstack: [{ ...row, stallsMs: summarize([0, 0]) }] })).not.toContain("stalled");
    expect(formatTable({ paths: [], xlSaveCMs: null, toolstack: [{ ...row, stallsMs: undefined }] })).not.toContain("stalled");
  });

  it("says when the baseline is missing and shows '-' for empty stats", () => {
    const empty = { ...path("xenstore+poll", 10), ok: 0, failed: 3, totalMs: summarize([]), errors: ["boom"] };
    const text = formatTable({ paths: [empty], xlSaveCMs: null }, "xenstore+watch");
    expect(text).toMatch(/baseline xenstore\+watch was not measured/);
    expect(text).toMatch(/xenstore\+poll: 3 failed: boom/);
    expect(text).toMatch(/ - +-$/m);
  });
});

describe("formatTable's checkpoint loops", () => {
  const loop = (over: Partial<CheckpointLoopResult>): CheckpointLoopResult => ({
    path: "xenstore+evtchn", xsResume: "inline", requested: 1000, ok: 1000, failed: 0, errors: [], elapsedMs: 30000,
    cyclesPerSecond: 33.3, totalMs: summarize([29, 30, 31]), ...over,
  });

  it("prints the per-100 medians of a 1000-cycle loop, the per-1000 ones and the budget of a long loop", () => {
    const text = formatTable({
      paths: [], xlSaveCMs: null,
      checkpointLoops: [
        loop({ totalMsPerHundred: [30, 31], totalMsPerThousand: [30.5], stoppedBy: "count" }),
        loop({ requested: 10000, ok: 2500, totalMsPerHundred: Array<number>(25).fill(30), totalMsPerThousand: [30, 31, 32], stoppedBy: "time", budgetSeconds: 600, long: true }),
      ],
    });
    const lines = text.split("\n");
    const first = lines.findIndex((l) => l.startsWith("checkpoint --interval 0 --count 1000, XS_RESUME inline"));
    expect(lines[first + 1]).toBe("  cycle median per 100 cycles: 30.0, 31.0 ms");
    expect(lines[first + 2]).toMatch(/^checkpoint --interval 0 --count 10000 --for 600, XS_RESUME inline: 2500 ok/);
    expect(lines[first + 3]).toBe("  cycle median per 1000 cycles: 30.0, 31.0, 32.0 ms");
    expect(lines[first + 4]).toBe("  stopped by its 600 s budget after 2500 cycles");
    expect(text).not.toMatch(/per 1000 cycles: 30\.5/);
    expect(text.match(/per 100 cycles/g)).toHaveLength(1);
  });
});

describe("summarize", () => {
  it("nearest-rank p99 and median", () => {
    const xs = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(summarize(xs)).toEqual({ n: 100, avg: 50.5, min: 1, max: 100, median: 50.5, p99: 99 });
    expect(summarize([3, 1, 2]).median).toBe(2);
    expect(summarize([5]).p99).toBe(5);
  });
});

describe("mediansPerBlock (the checkpoint loop's drift per 100 cycles)", () => {
  it("gives each block's median in order, the last block possibly shorter", () => {
    const values = [...Array<number>(100).fill(30), ...Array<number>(100).fill(60), 200, 100, 300];
    expect(mediansPerBlock(values, 100)).toEqual([30, 60, 200]);
    expect(mediansPerBlock([], 100)).toEqual([]);
    expect(mediansPerBlock([1.234, 1.25], 1)).toEqual([1.2, 1.3]);
  });
});

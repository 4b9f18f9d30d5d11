// The pieces: per-key queue, journal file, pid lock (the Prometheus text: metrics.test.ts).
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";

import { acquirePidLock, CriticalGate, isDaemonError, Journal, KeyedQueue, ToolstackScanner, toolstackUser } from "../src";
import { mkdirSync } from "node:fs";

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "fsd-parts-"));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("KeyedQueue", () => {
  it("runs one key's tasks one at a time in order, other keys concurrently, and survives a failure", async () => {
    const q = new KeyedQueue<number>();
    const log: string[] = [];
    let inA = 0;
    let maxInA = 0;
    const task = (key: number, name: string, ms: number, fail = false) =>
      q.run(key, async () => {
        if (key === 1) maxInA = Math.max(maxInA, ++inA);
        log.push(`start ${name}`);
        await sleep(ms);
        log.push(`end ${name}`);
        if (key === 1) inA--;
        if (fail) throw new Error(`${name} failed`);
        return name;
      });
    const a1 = task(1, "a1", 30, true);
    const a2 = task(1, "a2", 5);
    const b1 = task(2, "b1", 5);
    expect(q.depth(1)).toBe(2);
    await expect(a1).rejects.toThrow("a1 failed");
    await expect(a2).resolves.toBe("a2");
    await expect(b1).resolves.toBe("b1");
    expect(maxInA).toBe(1);
    // b1 ran while a1 was still running; a2 only after a1 ended.
    expect(log.indexOf("end b1")).toBeLessThan(log.indexOf("end a1"));
    expect(log.indexOf("start a2")).toBeGreaterThan(log.indexOf("end a1"));
    await q.idle();
    expect(q.depth(1)).toBe(0);
  });
});

describe("Journal", () => {
  it("writes atomically (no tmp file left), reloads what was written, and treats garbage as empty", () => {
    const p = join(dir, "sub", "journal.json");
    const j = new Journal(p);
    j.add(5, "checkpoint");
    j.add(3, "suspend");
    j.add(5, "checkpoint"); // same entry: no write
    expect(j.writes).toBe(2);
    const back = Journal.load(p);
    expect(back.problem).toBeUndefined();
    expect(back.journal.entries().map((e) => [e.domid, e.reason, e.pid])).toEqual([
      [3, "suspend", process.pid],
      [5, "checkpoint", process.pid],
    ]);
    j.remove(3);
    expect(Journal.load(p).journal.entries().map((e) => e.domid)).toEqual([5]);
    expect(existsSync(`${p}.${process.pid}.tmp`)).toBe(false);
    writeFileSync(p, "{half");
    const bad = Journal.load(p);
    expect(bad.problem).toMatch(/not valid JSON/);
    expect(bad.journal.entries()).toEqual([]);
    expect(Journal.load(join(dir, "none.json")).journal.entries()).toEqual([]);
  });
});

describe("Journal entries per (domid, owner op)", () => {
  it("a suspend request's entry and a loop's entry for one domain coexist; removing one leaves the other", () => {
    const p = join(dir, "journal.json");
    const j = new Journal(p);
    j.add(5, "checkpoint");
    j.add(5, "suspend");
    expect(j.entries().map((e) => [e.domid, e.reason])).toEqual([
      [5, "checkpoint"],
      [5, "suspend"],
    ]);
    j.remove(5, "suspend");
    expect(j.entries().map((e) => [e.domid, e.reason])).toEqual([[5, "checkpoint"]]);
    expect(Journal.load(p).journal.entries().map((e) => [e.domid, e.reason])).toEqual([[5, "checkpoint"]]);
    expect(j.has(5)).toBe(true);
    j.remove(5, "checkpoint");
    expect(j.has(5)).toBe(false);
  });
});

describe("pid lock", () => {
  it("refuses a second daemon while the first holds the lock, replaces a stale file, and removes its own on release", async () => {
    const p = join(dir, "daemon.pid");
    const lock = await acquirePidLock(p);
    expect(readFileSync(p, "utf8").trim()).toBe(String(process.pid));
    let err: unknown;
    try {
      await acquirePidLock(p, 999_999);
    } catch (e) {
      err = e;
    }
    expect(isDaemonError(err, "EBUSY")).toBe(true);
    expect((err as Error).message).toMatch(new RegExp(`another fastsuspendd is running \\(pid ${process.pid}`));
    lock.release();
    expect(existsSync(p)).toBe(false);
    // A dead daemon's file (kill -9): stale, replaced.
    const dead = spawnSync("true").pid;
    writeFileSync(p, `${dead}\n`);
    const l2 = await acquirePidLock(p);
    expect(l2.replacedStale).toBe(dead);
    expect(readFileSync(p, "utf8").trim()).toBe(String(process.pid));
    l2.release();
    expect(existsSync(p)).toBe(false);
  });

  it("a starter that finds the pid file empty or half-written (another starter between create and write) does not take over", async () => {
    const p = join(dir, "daemon.pid");
    const first = await acquirePidLock(p);
    // What a second starter reads in the first one's window between O_EXCL create and write().
    writeFileSync(p, "");
    let err: unknown;
    try {
      const second = await acquirePidLock(p, 999_998);
      second.release();
    } catch (e) {
      err = e;
    }
    expect(isDaemonError(err, "EBUSY")).toBe(true);
    // Two starters at once on a stale file: exactly one wins.
    first.release();
    writeFileSync(p, `${spawnSync("true").pid}\n`);
    const both = await Promise.allSettled([acquirePidLock(p, 999_997), acquirePidLock(p, 999_996)]);
    expect(both.map((b) => b.status).sort()).toEqual(["fulfilled", "rejected"]);
    for (const b of both) if (b.status === "fulfilled") b.value.release();
  });
});

/** A fake /proc entry: comm as Linux shows it (base name of the executable, cut to 15 bytes) and cmdline. */
function proc(pid: number, argv: string[], comm = (argv[0] ?? "").split("/").pop()?.slice(0, 15) ?? ""): void {
  mkdirSync(join(dir, String(pid)));
  writeFileSync(join(dir, String(pid), "comm"), `${comm}\n`);
  writeFileSync(join(dir, String(pid), "cmdline"), `${argv.join("\0")}\0`);
}

describe("toolstackUser", () => {
  it("finds xl save / libxl-save-helper naming the domain by id or name, and nothing else", async () => {
    proc(10, ["/usr/sbin/xl", "list"]);
    proc(11, ["xl", "save", "-c", "7", "/dev/null"]);
    proc(12, ["/usr/lib/xen-4.17/bin/libxl-save-helper", "--save-domain", "9", "12", "0", "0", "guestname"]);
    proc(13, ["node", "save", "5"]);
    writeFileSync(join(dir, "self"), "x");
    expect(await toolstackUser(7, undefined, dir)).toMatch(/^xl \(pid 11\): save -c 7/);
    expect(await toolstackUser(12, undefined, dir)).toMatch(/^libxl-save-helper \(pid 12\)/);
    expect(await toolstackUser(4, "guestname", dir)).toMatch(/libxl-save-helper/);
    expect(await toolstackUser(5, undefined, dir)).toBeUndefined(); // not a toolstack binary
    expect(await toolstackUser(8, "other", dir)).toBeUndefined();
    expect(await toolstackUser(8, undefined, join(dir, "none"))).toBeUndefined();
  });
});

describe("ToolstackScanner", () => {
  it("reads comm of every process but cmdline only of toolstack binaries (libxl-save-helper's comm is cut to 15 bytes)", async () => {
    for (let pid = 100; pid < 160; pid++) proc(pid, ["/bin/sh", "-c", "sleep 1"]);
    proc(200, ["/usr/lib/xen-4.17/bin/xl", "save", "-c", "7", "/dev/null"]);
    proc(201, ["/usr/lib/xen-4.17/bin/libxl-save-helper", "--save-domain", "9", "12", "0", "0", "guestname"]);
    proc(202, ["xl", "save", "8", "/tmp/x"], "bash"); // comm says bash: not looked at
    writeFileSync(join(dir, "self"), "x");
    const sc = new ToolstackScanner({ procDir: dir, concurrency: 4 });
    const procs = await sc.scan();
    expect(procs.map((p) => [p.pid, p.tool])).toEqual([
      ["200", "xl"],
      ["201", "libxl-save-helper"],
    ]);
    expect([sc.scans, sc.commReads, sc.cmdlineReads]).toEqual([1, 63, 2]);
    expect(await sc.user(7, undefined)).toMatch(/^xl \(pid 200\): save -c 7/);
    expect(await sc.user(4, "guestname")).toMatch(/^libxl-save-helper \(pid 201\)/);
    expect(await sc.user(8, undefined)).toBeUndefined();
  });

  it("callers share a scan in flight; a finished scan is reused only within maxAgeMs", async () => {
    proc(10, ["xl", "list"]);
    let now = 1000;
    const sc = new ToolstackScanner({ procDir: dir, maxAgeMs: 50, now: () => now });
    const [a, b, c] = await Promise.all([sc.user(3, undefined), sc.user(3, undefined), sc.scan()]);
    expect([a, b, c.map((p) => p.pid)]).toEqual([undefined, undefined, ["10"]]);
    expect(sc.scans).toBe(1);
    proc(11, ["xl", "migrate", "3", "host2"]);
    now += 50;
    expect(await sc.user(3, undefined)).toBeUndefined(); // the earlier scan, still fresh enough
    expect(sc.scans).toBe(1);
    now += 1;
    expect(await sc.user(3, undefined)).toMatch(/^xl \(pid 11\): migrate 3 host2/);
    expect(sc.scans).toBe(2);
    // Default maxAgeMs 0: every call after a finished scan scans again.
    const fresh = new ToolstackScanner({ procDir: dir, now: () => now });
    await fresh.scan();
    await fresh.scan();
    expect(fresh.scans).toBe(2);
  });
});

describe("CriticalGate", () => {
  it("lets requests through at once when idle, holds them while critical work runs, releases them when it is done", async () => {
    const g = new CriticalGate(10_000);
    expect(await g.wait()).toBe("free");
    const order: string[] = [];
    let finish = (): void => undefined;
    const work = g.critical(
      () =>
        new Promise<void>((r) => {
          finish = () => {
            order.push("work done");
            r();
          };
        }),
    );
    const held = [g.wait(), g.wait()].map((p) => p.then((how) => order.push(`request ${how}`)));
    await sleep(20);
    expect([g.active, g.waiting, order]).toEqual([1, 2, []]);
    finish();
    await work;
    await Promise.all(held);
    expect(order).toEqual(["work done", "request after-work", "request after-work"]);
    expect([g.active, g.waiting, g.held, g.releasedByLimit]).toEqual([0, 0, 2, 0]);
  });

  it("releases a held request after maxHoldMs even while work goes on; a failing task leaves the gate open", async () => {
    const g = new CriticalGate(30);
    const work = g.critical(() => sleep(300));
    const t0 = Date.now();
    expect(await g.wait()).toBe("hold-limit");
    const waited = Date.now() - t0;
    expect(waited).toBeGreaterThanOrEqual(25);
    expect(waited).toBeLessThan(250);
    expect(g.active).toBe(1);
    await work;
    await expect(g.critical(() => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    expect(g.active).toBe(0);
    expect(await g.wait()).toBe("free");
  });
});

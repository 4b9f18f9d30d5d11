// The guest kernel series (kernel/, docs/kernel.md) on real Xen, in the shared nested lab: the
// patched guest advertises device/suspend/event-channel, a notification on it suspends the guest
// with no xenstore write, libxl (xl save -c) takes the channel path, checkpoints keep the port, a
// real restore renews it; a stock guest still uses xenstore. Latency: the channel vs xenstore on
// the same patched guest, in the same run. Runs through jest.lab.config.cjs only.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { attachSharedLab, guestSuspends, stackFacts, stackFromEnv, type Guest, type Lab } from "@fastsuspend/lab";

import { prepareLoopVbd, VBD, VBD_ID } from "./vbd";

const CLI = "node /fastsuspend/packages/cli/dist/main.js";
const MINUTE = 60_000;
const PATCHED_NAME = "gc-patched";
const RESTORED_NAME = "gc-patched"; // xl restore keeps the name
const STOCK_NAME = "gc-stock";
// The stack npm test booted (FASTSUSPEND_STACK): which guest kernels it built.
const facts = stackFacts(stackFromEnv());

function requireEnv(name: string): string {
  const v = process.env[name];
  if (v === undefined || v === "") throw new Error(`${name} is not set: these tests need that kernel image (see kernel/build.sh)`);
  return v;
}

interface Summary { n: number; median: number; p99: number; min: number; avg: number }
interface BenchPath { name: string; n: number; ok: number; failed: number; errors: string[]; totalMs: Summary; suspendMs: Summary }
interface BenchJson { xen: string; xenstored: string; paths: BenchPath[] }

async function xlState(lab: Lab, domid: number): Promise<string> {
  return (await lab.mustExec(`xl list ${domid} | awk 'NR==2{print $5}'`)).trim();
}
function expectRunning(state: string): void {
  expect(state).toMatch(/^[r-][b-]-{4}$/);
}
async function readKey(lab: Lab, domid: number): Promise<string> {
  return (await lab.mustExec(`xenstore-read /local/domain/${domid}/device/suspend/event-channel`)).trim();
}
interface Info { shutdown: string | null; guestChannel: { status: string; port?: number }; hvNotify: { available: boolean }; paths: string[] }
async function info(lab: Lab, domid: number): Promise<Info> {
  return JSON.parse(await lab.mustExec(`${CLI} info ${domid} --json`)) as Info;
}

/**
 * Suspends `domid` with the CLI on `path` while a xenstore-watch records every write to its
 * control/shutdown; leaves it suspended. Returns the watch's lines (the first is the registration).
 */
async function suspendWatchingControl(lab: Lab, domid: number, path: string): Promise<{ watchLines: string[]; suspendJson: { path: string; suspendMs: number } }> {
  const out = await lab.mustExec(
    [
      "rm -f /tmp/gc-watch.log",
      `xenstore-watch /local/domain/${domid}/control/shutdown >/tmp/gc-watch.log 2>&1 & w=$!`,
      "sleep 1",
      `${CLI} suspend ${domid} --path ${path} --timeout 20000 --json >/tmp/gc-suspend.json; rc=$?`,
      "sleep 1",
      "kill $w 2>/dev/null; wait $w 2>/dev/null",
      'echo "rc=$rc"; cat /tmp/gc-suspend.json; echo "--watch--"; cat /tmp/gc-watch.log',
    ].join("; "),
    { timeoutMs: 2 * MINUTE },
  );
  expect(out).toMatch(/^rc=0$/m);
  const [head = "", watch = ""] = out.split("--watch--\n");
  const json = head.split("\n").find((l) => l.startsWith("{")) ?? "{}";
  return { watchLines: watch.split("\n").filter((l) => l.trim() !== ""), suspendJson: JSON.parse(json) as { path: string; suspendMs: number } };
}

/** Polls (bounded) until the guest's key holds a port; returns it. */
async function waitForKey(lab: Lab, domid: number, timeoutMs: number): Promise<string> {
  const out = await lab.mustExec(
    `i=0; until v=$(xenstore-read /local/domain/${domid}/device/suspend/event-channel 2>/dev/null) && [ -n "$v" ]; do i=$((i+1)); [ $i -gt ${Math.ceil(timeoutMs / 100)} ] && exit 1; sleep 0.1; done; echo "$v"`,
    { timeoutMs: timeoutMs + 30_000 },
  );
  return out.trim();
}

describe(`guest suspend event channel (patched Linux ${facts.linux}) on real Xen`, () => {
  let lab: Lab;
  let attached = false;
  let patched: Guest;
  let port = "";
  const patchedKernel = requireEnv("FASTSUSPEND_GUEST_KERNEL_PATCHED");
  const stockKernel = requireEnv("FASTSUSPEND_GUEST_KERNEL_STOCK");

  beforeAll(async () => {
    lab = await attachSharedLab();
    attached = true;
    await lab.exec(`xl destroy ${PATCHED_NAME} 2>/dev/null; xl destroy ${STOCK_NAME} 2>/dev/null; rm -f /tmp/gc.save; true`);
    patched = await lab.createGuest({ name: PATCHED_NAME, kernel: patchedKernel });
  }, 6 * MINUTE);

  afterAll(async () => {
    if (!attached) return;
    await lab.exec(`xl destroy ${PATCHED_NAME} 2>/dev/null; xl destroy ${STOCK_NAME} 2>/dev/null; rm -f /tmp/gc.save; true`);
    lab.disconnect();
  });

  test("the patched guest advertises a port in device/suspend/event-channel and logs it", async () => {
    // The guest writes the key from its xenstore notifier, which may come after init's marker.
    port = await waitForKey(lab, patched.domid, 60_000);
    expect(port).toMatch(/^[1-9][0-9]*$/);
    const log = await lab.mustExec(`cat /var/log/xen/console/guest-${PATCHED_NAME}.log`);
    expect(log).toContain(facts.guestKernelRelease.patched);
    expect(log).toMatch(new RegExp(`xen:manage: Suspend event channel ${port} for domain 0`));
    const caps = await info(lab, patched.domid);
    expect(caps.guestChannel).toMatchObject({ status: "ok", port: Number(port) });
    // The channel trigger comes first; the notification is the hypervisor patch's where the lab
    // runs it (npm test's oxenstored lab), else the subscribed port.
    expect(caps.paths[0]).toBe(caps.hvNotify.available ? "evtchn+virq" : "evtchn+evtchn");
  });

  test("a notification on the channel suspends the guest with no xenstore write; a fast resume brings it back", async () => {
    const { watchLines, suspendJson } = await suspendWatchingControl(lab, patched.domid, "evtchn+evtchn");
    expect(suspendJson.path).toBe("evtchn+evtchn");
    // Only the watch's own registration event: nobody wrote control/shutdown.
    expect(watchLines).toEqual([`/local/domain/${patched.domid}/control/shutdown`]);
    expect((await lab.mustExec(`xenstore-read /local/domain/${patched.domid}/control/shutdown`)).trim()).toBe("");
    expect(await xlState(lab, patched.domid)).toMatch(/^---ss-$/);
    expect((await info(lab, patched.domid)).shutdown).toBe("suspend");
    const r = JSON.parse(await lab.mustExec(`${CLI} resume ${patched.domid} --json`)) as { full: boolean; resumeMs: number };
    expect(r.full).toBe(false);
    expectRunning(await xlState(lab, patched.domid));
    expect(await readKey(lab, patched.domid)).toBe(port); // a cancelled suspend keeps the port
  }, 3 * MINUTE);

  test("xl save -c succeeds and libxl triggers through the guest's channel", async () => {
    const out = await lab.exec(`xl -vvv save -c ${patched.domid} /dev/null 2>&1`, { timeoutMs: 3 * MINUTE });
    expect(out.code).toBe(0);
    expect(out.stdout).toMatch(new RegExp(`Domain ${patched.domid}:issuing PV suspend request via event channel`));
    expect(out.stdout).not.toMatch(/suspend request via XenBus control node/);
    expect(out.stdout).toMatch(/guest has suspended/);
    expectRunning(await xlState(lab, patched.domid));
    expect(await readKey(lab, patched.domid)).toBe(port);
  }, 4 * MINUTE);

  test("100 cooperative suspend/resume cycles through the channel keep the same port", async () => {
    const before = await lab.mustExec(`grep -c 'Suspend event channel' /var/log/xen/console/guest-${PATCHED_NAME}.log`);
    const layoutLines = await lab.mustExec(`grep -c 'Grant tables using' /var/log/xen/console/guest-${PATCHED_NAME}.log`);
    await guestSuspends(lab, PATCHED_NAME); // empties the guest's trace: what follows is these 100
    const r = await lab.exec(`${CLI} checkpoint ${patched.domid} --interval 0 --count 100 --path evtchn+evtchn --timeout 20000 --json`, { timeoutMs: 12 * MINUTE });
    const stats = JSON.parse(r.stdout.trim().split("\n").pop() ?? "{}") as { ok: number; failed: number; path: string; totalMs: Summary; errors: string[] };
    expect({ code: r.code, ok: stats.ok, failed: stats.failed, path: stats.path, errors: stats.errors }).toEqual({ code: 0, ok: 100, failed: 0, path: "evtchn+evtchn", errors: [] });
    console.log(`100 checkpoints via evtchn+evtchn: median ${stats.totalMs.median.toFixed(1)} ms, p99 ${stats.totalMs.p99.toFixed(1)} ms`);
    expect(await readKey(lab, patched.domid)).toBe(port);
    // No re-advertisement happened: checkpoints are cancelled suspends.
    expect(await lab.mustExec(`grep -c 'Suspend event channel' /var/log/xen/console/guest-${PATCHED_NAME}.log`)).toBe(before);
    // Nor a grant table layout line per checkpoint (kernel patch 0008; one each before it).
    expect(await lab.mustExec(`grep -c 'Grant tables using' /var/log/xen/console/guest-${PATCHED_NAME}.log`)).toBe(layoutLines);
    expectRunning(await xlState(lab, patched.domid));
    // The guest's own account (patch 0005's tracepoints): the same 100, each asked for on the
    // channel, cancelled, and timed step by step from its side.
    const seen = await guestSuspends(lab, PATCHED_NAME);
    expect(seen).toHaveLength(100);
    for (const g of seen) {
      expect({ source: g.source, cancelled: g.cancelled, restored: g.restored }).toEqual({ source: 1, cancelled: true, restored: false });
      // The lab's xen clocksource now and then steps back after a cancelled suspend: such a
      // suspend's times say nothing (the probe marks it), its other facts still hold.
      if (g.clockSteppedBack) continue;
      expect(g.suspendMs).toBeGreaterThan(0);
      expect(g.resumeMs).toBeGreaterThan(0);
      expect(Object.keys(g.steps)).toEqual(expect.arrayContaining(["freeze_processes", "freeze_kernel_threads", "dpm_suspend", "xs_suspend", "stop_machine", "xs_resume", "dpm_resume", "thaw_processes"]));
      // The steps lie inside the suspend: none is longer than the whole.
      for (const ms of Object.values(g.steps)) expect(ms).toBeLessThanOrEqual(g.totalMs);
    }
    const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1] ?? Number.NaN;
    console.log(`the guest's view of those 100: suspend median ${med(seen.map((g) => g.suspendMs)).toFixed(2)} ms, resume median ${med(seen.map((g) => g.resumeMs)).toFixed(2)} ms`);
  }, 15 * MINUTE);

  test("cycle latency, same patched guest, same run: channel trigger vs xenstore trigger", async () => {
    const file = "/tmp/gc-bench.json";
    const r = await lab.exec(
      `${CLI} bench-run ${patched.domid} --paths evtchn+evtchn,xenstore+evtchn,xenstore+watch --cycles 100 --interval 20 --xl-save 0 --timeout 20000 --output ${file}`,
      { timeoutMs: 20 * MINUTE },
    );
    const json = JSON.parse(await lab.mustExec(`cat ${file}`)) as BenchJson;
    const by = (n: string): BenchPath => {
      const p = json.paths.find((x) => x.name === n);
      if (p === undefined) throw new Error(`bench-run did not run ${n}`);
      return p;
    };
    const base = by("xenstore+watch").totalMs.median;
    const rows = ["evtchn+evtchn", "xenstore+evtchn", "xenstore+watch"].map((n) => {
      const p = by(n);
      return `| \`${n}\` | ${p.totalMs.median.toFixed(1)} | ${p.totalMs.p99.toFixed(1)} | ${p.totalMs.min.toFixed(1)} | ${p.suspendMs.median.toFixed(1)} | ${(p.totalMs.median / base).toFixed(2)} | ${p.ok}/${p.n} |`;
    });
    const table = [
      `xen ${json.xen}, ${json.xenstored}, domid ${patched.domid}, 100 cycles per path, 20 ms apart`,
      "",
      "| path | cycle median (ms) | p99 | min | suspend median | median vs xenstore+watch | ok |",
      "|---|---:|---:|---:|---:|---:|---:|",
      ...rows,
    ].join("\n");
    console.log(table);
    if (process.env.FASTSUSPEND_RESULTS_DIR) writeFileSync(`${process.env.FASTSUSPEND_RESULTS_DIR}/guest-channel-bench.md`, `${table}\n`);
    for (const p of json.paths) expect([p.name, p.ok, p.failed, p.errors]).toEqual([p.name, 100, 0, []]);
    expect(r.code).toBe(0);
    // Which is faster is npm run bench's to say (a timed assertion here failed under CI load:
    // 115.6 vs 73.4 ms with a load average of 18). What a test can say: the guest saw each
    // path's requests come the way the path sends them, the channel's on the channel.
    const seen = await guestSuspends(lab, PATCHED_NAME);
    const sources = json.paths.map((p, i) => [p.name, [...new Set(seen.slice(i * 100, (i + 1) * 100).map((g) => g.source))]]);
    expect(seen).toHaveLength(100 * json.paths.length);
    expect(sources).toEqual(json.paths.map((p) => [p.name, [p.name.startsWith("evtchn+") ? 1 : 0]]));
    expect(await readKey(lab, patched.domid)).toBe(port);
    expectRunning(await xlState(lab, patched.domid));
  }, 25 * MINUTE);

  test("xl save to a file + xl restore: the restored guest advertises a new channel that works", async () => {
    const oldLines = Number((await lab.mustExec(`grep -c 'Suspend event channel' /var/log/xen/console/guest-${PATCHED_NAME}.log`)).trim());
    await lab.mustExec(`xl save ${patched.domid} /tmp/gc.save`, { timeoutMs: 5 * MINUTE });
    expect((await lab.exec(`xl list ${patched.domid}`)).code).not.toBe(0); // saved = gone
    await lab.mustExec(`xl restore /tmp/gc.save`, { timeoutMs: 5 * MINUTE });
    const domid = Number((await lab.mustExec(`xl domid ${RESTORED_NAME}`)).trim());
    expect(domid).not.toBe(patched.domid);
    patched = { ...patched, domid };
    // libxl creates the key empty on the new domain; the guest writes its new port after resume.
    const newPort = await waitForKey(lab, domid, 60_000);
    expect(newPort).toMatch(/^[1-9][0-9]*$/);
    const log = await lab.mustExec(
      `i=0; until [ $(grep -c 'Suspend event channel' /var/log/xen/console/guest-${RESTORED_NAME}.log) -gt ${oldLines} ]; do i=$((i+1)); [ $i -gt 300 ] && break; sleep 0.1; done; cat /var/log/xen/console/guest-${RESTORED_NAME}.log`,
      { timeoutMs: MINUTE },
    );
    expect(log).toMatch(new RegExp(`Suspend event channel ${newPort} for domain 0`));
    console.log(`port before save ${port}, after restore ${newPort} (domid ${domid})`);
    port = newPort;
    const { watchLines } = await suspendWatchingControl(lab, domid, "evtchn+evtchn");
    expect(watchLines).toEqual([`/local/domain/${domid}/control/shutdown`]);
    expect(await xlState(lab, domid)).toMatch(/^---ss-$/);
    await lab.mustExec(`${CLI} resume ${domid}`);
    expectRunning(await xlState(lab, domid));
    // The guest saw both: xl save's suspend (over the channel) ended in a restore, ours was cancelled.
    const seen = await guestSuspends(lab, RESTORED_NAME);
    const restored = seen.filter((g) => g.restored);
    expect(restored).toHaveLength(1);
    expect(restored[0]).toMatchObject({ source: 1, cancelled: false });
    expect(seen[seen.length - 1]).toMatchObject({ source: 1, cancelled: true, restored: false });
  }, 12 * MINUTE);

  test("a stock guest has no channel and still suspends through xenstore", async () => {
    await lab.exec(`xl destroy ${PATCHED_NAME} 2>/dev/null; true`); // room for the stock guest
    const stock = await lab.createGuest({ name: STOCK_NAME, kernel: stockKernel });
    const log = await lab.mustExec(`cat /var/log/xen/console/guest-${STOCK_NAME}.log`);
    expect(log).toContain(facts.guestKernelRelease.stock);
    expect(log).not.toMatch(/Suspend event channel/);
    expect(await readKey(lab, stock.domid)).toBe("");
    const caps = await info(lab, stock.domid);
    expect(caps.guestChannel.status).toBe("absent");
    expect(caps.paths.filter((p) => p.startsWith("evtchn+"))).toEqual([]);
    const { watchLines, suspendJson } = await suspendWatchingControl(lab, stock.domid, "xenstore+watch");
    expect(suspendJson.path).toBe("xenstore+watch");
    // The write of "suspend" and the guest's ack (clearing it) are both seen.
    expect(watchLines.length).toBeGreaterThanOrEqual(2);
    expect(await xlState(lab, stock.domid)).toMatch(/^---ss-$/);
    await lab.mustExec(`${CLI} resume ${stock.domid}`);
    expectRunning(await xlState(lab, stock.domid));
    const save = await lab.exec(`xl -vvv save -c ${stock.domid} /dev/null 2>&1`, { timeoutMs: 3 * MINUTE });
    expect(save.code).toBe(0);
    expect(save.stdout).toMatch(/issuing PV suspend request via XenBus control node/);
    expect(save.stdout).not.toMatch(/suspend request via event channel/);
  }, 8 * MINUTE);
});

// Review 15, finding 10 (docs/kernel.md, "Shutdown" and "Locking"): (a) poweroff must not wait for
// xenstored, (b) a channel-triggered suspend must not run beside xenbus watch callbacks. Each test
// runs on a PV guest, and on a PVH guest when the lab's Xen offers HVM (lab booted with
// FASTSUSPEND_QEMU_CPU="Opteron_G3,+svm,+npt,-rdtscp").

type GuestType = "pv" | "pvh";
const KFIX_TYPES: GuestType[] = ["pv", "pvh"];

/** Creates a guest from a config of our own (the lab's createGuest makes PV guests only). */
async function createTypedGuest(lab: Lab, o: { name: string; type: GuestType; kernel: string; ramdisk?: string }): Promise<number> {
  const log = `/var/log/xen/console/guest-${o.name}.log`;
  await lab.exec(`xl destroy ${o.name} 2>/dev/null; rm -f ${log}; true`);
  const cfg = [
    `name = "${o.name}"`, `type = "${o.type}"`, `kernel = "${lab.share(o.kernel)}"`, `ramdisk = "${o.ramdisk ?? "/lab/guest-initrd.gz"}"`,
    "memory = 128", "vcpus = 1", 'extra = "console=hvc0"',
    'on_crash = "preserve"', 'on_poweroff = "destroy"', 'on_reboot = "destroy"',
  ].join("\n");
  mkdirSync(join(lab.runDir, "share", "guests"), { recursive: true });
  writeFileSync(join(lab.runDir, "share", "guests", `${o.name}.cfg`), `${cfg}\n`);
  await lab.mustExec(["xl", "create", `/lab/guests/${o.name}.cfg`], { timeoutMs: 4 * MINUTE });
  const domid = Number((await lab.mustExec(["xl", "domid", o.name])).trim());
  await lab.mustExec(`i=0; until grep -q FASTSUSPEND-GUEST-READY ${log} 2>/dev/null; do i=$((i+1)); [ $i -gt 1800 ] && exit 1; sleep 0.1; done`, { timeoutMs: 5 * MINUTE });
  return domid;
}

/**
 * The lab's guest initramfs plus /sbin/poweroff, which orderly_poweroff() runs on `xl shutdown`
 * (the lab's initramfs has none, so `xl shutdown` would do nothing). It announces itself on the
 * console, waits 15 s (the test stops xenstored meanwhile) and powers off: reboot(2), so the kernel
 * runs its reboot notifiers, then "reboot: Power down".
 */
function poweroffInitrd(lab: Lab): string {
  const dir = mkdtempSync(join(tmpdir(), "gc-initrd-"));
  mkdirSync(join(dir, "root", "sbin"), { recursive: true });
  writeFileSync(
    join(dir, "root", "sbin", "poweroff"),
    ["#!/bin/sh", "echo FS-POWEROFF-HELPER >/dev/console", "/bin/busybox sleep 15", "exec /bin/busybox poweroff -f", ""].join("\n"),
    { mode: 0o755 },
  );
  execFileSync("sh", ["-c", "cd root && find . | cpio -o -H newc -R 0:0 --quiet | gzip -9 > ../extra.cpio.gz"], { cwd: dir });
  const out = join(dir, "gc-poweroff-initrd.gz");
  writeFileSync(out, Buffer.concat([readFileSync(lab.artefacts.guestInitrd), readFileSync(join(dir, "extra.cpio.gz"))]));
  return lab.share(out);
}

// What the kernel prints once its reboot notifiers are done (kernel_halt() / kernel_power_off());
// 6.12's kernel_halt() says "Power off not available: System halted instead" when reboot(2) asked
// for a power-off that a Xen PV guest cannot do.
const POWER_DOWN = "reboot: (System halted|Power down|Power off not available)";

const GETINFO = (domid: number): string =>
  `node -e 'const x=require("/fastsuspend/packages/xen/dist/index.js").openXen(); try { const i=x.getInfo(${domid}); console.log("xen-info " + JSON.stringify({ shutdown: i.shutdown, reason: i.shutdownReasonName, dying: i.dying })); } catch (e) { console.log("xen-info " + JSON.stringify({ gone: String(e.message) })); }'`;

// Lines a guest kernel must never print in these tests.
const KERNEL_TROUBLE = /WARNING:|BUG:|Oops|should not be sleeping|INFO: task|Call Trace|suspend failed|dpm_suspend_start|freeze processes failed|xenbus_dev_suspend|Kernel panic/;

describe("guest suspend event channel: shutdown and xenwatch serialisation (review 15, finding 10)", () => {
  let lab: Lab;
  let attached = false;
  let types: GuestType[] = ["pv"];
  const patchedKernel = requireEnv("FASTSUSPEND_GUEST_KERNEL_PATCHED");

  beforeAll(async () => {
    lab = await attachSharedLab();
    attached = true;
    const caps = (await lab.mustExec("xl info")).split("\n").find((l) => l.startsWith("virt_caps")) ?? "";
    // FASTSUSPEND_GC_TYPES=pv (or pvh) narrows the run to one guest type.
    const only = process.env.FASTSUSPEND_GC_TYPES?.split(",");
    types = KFIX_TYPES.filter((t) => (t === "pv" || /\bhvm\b/.test(caps)) && (only === undefined || only.includes(t)));
    console.log(`virt_caps: ${caps.trim()}; guest types tested: ${types.join(", ")}`);
  }, 2 * MINUTE);

  afterAll(async () => {
    if (!attached) return;
    await lab.exec("kill -CONT $(cat /var/run/xenstored.pid) 2>/dev/null; true");
    await lab.exec(`for n in ${KFIX_TYPES.map((t) => `gc-off-${t} gc-vbd-${t}`).join(" ")}; do xl destroy $n 2>/dev/null; done; true`);
    lab.disconnect();
  });

  test("(a) the guest powers off while xenstored is stopped: the reboot notifier does no xenstore I/O", async () => {
    const ramdisk = poweroffInitrd(lab);
    for (const type of types) {
      const name = `gc-off-${type}`;
      const log = `/var/log/xen/console/guest-${name}.log`;
      const domid = await createTypedGuest(lab, { name, type, kernel: patchedKernel, ramdisk });
      const port = await waitForKey(lab, domid, 60_000);
      expect(port).toMatch(/^[1-9][0-9]*$/);
      // The request itself needs xenstored (the guest reads and acks control/shutdown); it is
      // stopped only once the guest runs /sbin/poweroff, which powers off 15 s later.
      const out = await lab.exec(
        [
          "pid=$(cat /var/run/xenstored.pid)",
          "trap 'kill -CONT $pid' EXIT",
          `xl shutdown ${domid} || exit 1`,
          `end=$(($(date +%s) + 90)); until grep -q FS-POWEROFF-HELPER ${log}; do [ $(date +%s) -gt $end ] && { echo helper-not-started; exit 1; }; sleep 0.1; done`,
          "kill -STOP $pid && echo xenstored-stopped",
          // Must be false, else xenstored was stopped too late to prove anything.
          `grep -qE '${POWER_DOWN}' ${log} && echo halted-before-stop`,
          // Time-bounded (60 s), not iteration-bounded: a loaded TCG dom0 forks slowly.
          `end=$(($(date +%s) + 60)); until grep -qE '${POWER_DOWN}' ${log} || [ $(date +%s) -gt $end ]; do sleep 0.5; done`,
          `grep -qE '${POWER_DOWN}' ${log} && echo power-down-logged || echo power-down-not-logged`,
          GETINFO(domid),
          "kill -CONT $pid; echo xenstored-continued",
        ].join("; "),
        { timeoutMs: 5 * MINUTE },
      );
      // The trap does not run if the agent kills the script on a timeout.
      await lab.exec("kill -CONT $(cat /var/run/xenstored.pid) 2>/dev/null; true");
      const tail = (await lab.exec(`tail -n 15 ${log}`)).stdout;
      console.log(`(a) ${type} guest ${domid}:\n${out.stdout}\nconsole tail:\n${tail}`);
      expect(out.stdout).toContain("xenstored-stopped");
      expect(out.stdout).not.toContain("halted-before-stop");
      expect(out.stdout).toContain("power-down-logged");
      const info = JSON.parse(out.stdout.split("\n").find((l) => l.startsWith("xen-info "))?.slice(9) ?? "{}") as { shutdown?: boolean; reason?: string; gone?: string };
      // "reboot: System halted" / "Power down" is printed after the reboot notifiers have run: that
      // is what (a) is about. (Xen PV sets no pm_power_off, so reboot(2) turns poweroff into halt;
      // xen_machine_halt() then shuts the domain down with reason poweroff.) This tiny PVH config
      // has no ACPI sleep states either, and its domain may stay up after the message: logged only.
      if (type === "pv" && info.gone === undefined) expect(info).toMatchObject({ shutdown: true, reason: "poweroff" });
      await lab.exec(`xl destroy ${name} 2>/dev/null; true`);
    }
  }, 15 * MINUTE);

  test("(b) channel checkpoints while a vbd is attached and detached in a loop: all succeed, no kernel warning, the disk still works", async () => {
    // loop3: guest-data.lab uses loop4-7 (PV and PVH), and may run first on the same lab.
    const spec = await prepareLoopVbd(lab, { loop: 3, image: "/tmp/gc-vbd.img", mb: 4 });
    for (const type of types) {
      const name = `gc-vbd-${type}`;
      const log = `/var/log/xen/console/guest-${name}.log`;
      const domid = await createTypedGuest(lab, { name, type, kernel: patchedKernel });
      await waitForKey(lab, domid, 60_000);
      const fe = `/local/domain/${domid}/device/vbd/${VBD_ID}/state`;
      // One attach and detach alone first: the frontend connects (state 4), then goes away.
      const attachOnce = `xl block-attach ${domid} '${spec}' && i=0; until [ "$(xenstore-read ${fe} 2>/dev/null)" = 4 ]; do i=$((i+1)); [ $i -gt 600 ] && { echo not-connected; exit 1; }; sleep 0.1; done; echo connected`;
      expect(await lab.mustExec(attachOnce, { timeoutMs: 2 * MINUTE })).toContain("connected");
      await lab.mustExec(`xl block-detach ${domid} ${VBD}`, { timeoutMs: 2 * MINUTE });
      // The stress: attach/detach in a loop while checkpoints run back to back over the channel.
      const r = await lab.exec(
        [
          "rm -f /tmp/gc-loop.done /tmp/gc-ckpt.log /tmp/gc-loop.log",
          `( for i in 1 2 3 4 5 6 7 8 9 10 11 12; do xl block-attach ${domid} '${spec}' || echo attach-failed; sleep 1; xl block-detach ${domid} ${VBD} || echo detach-failed; done; touch /tmp/gc-loop.done ) >/tmp/gc-loop.log 2>&1 &`,
          `n=0; while [ ! -f /tmp/gc-loop.done ]; do ${CLI} checkpoint ${domid} --interval 0 --count 25 --path evtchn+evtchn --timeout 20000 --json >>/tmp/gc-ckpt.log 2>&1 || echo checkpoint-batch-failed; n=$((n+1)); done`,
          "wait",
          'echo "batches=$n"; cat /tmp/gc-loop.log; grep "^{" /tmp/gc-ckpt.log',
        ].join("\n"),
        { timeoutMs: 15 * MINUTE },
      );
      const batches = r.stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as { ok: number; failed: number; errors: string[] });
      const ok = batches.reduce((a, b) => a + b.ok, 0);
      const failed = batches.reduce((a, b) => a + b.failed, 0);
      const troubles = (await lab.exec(`grep -nE '${KERNEL_TROUBLE.source}' ${log}; true`)).stdout.trim();
      console.log(`(b) ${type} guest ${domid}: ${batches.length} batches, ${ok} checkpoints ok, ${failed} failed; loop log:\n${r.stdout.split("\n").filter((l) => !l.startsWith("{")).join("\n")}\nkernel trouble lines:\n${troubles || "(none)"}`);
      expect(r.stdout).not.toMatch(/checkpoint-batch-failed|attach-failed|detach-failed/);
      expect(failed).toBe(0);
      expect(ok).toBeGreaterThanOrEqual(25);
      expect(troubles).toBe("");
      expectRunning(await xlState(lab, domid));
      // The frontend still works afterwards: attach and connect; left attached for the next test.
      expect(await lab.mustExec(attachOnce, { timeoutMs: 2 * MINUTE })).toContain("connected");
    }
  }, 40 * MINUTE);

  test("(b) xl save + restore of a guest with a connected vbd: the channel-triggered suspend resumes blkfront from xenwatch", async () => {
    for (const type of types) {
      const name = `gc-vbd-${type}`;
      const log = `/var/log/xen/console/guest-${name}.log`;
      const domid = Number((await lab.mustExec(`xl domid ${name}`)).trim());
      expect((await lab.mustExec(`xenstore-read /local/domain/${domid}/device/vbd/${VBD_ID}/state`)).trim()).toBe("4");
      const save = await lab.exec(`rm -f /tmp/gc-vbd.save; xl -vvv save ${domid} /tmp/gc-vbd.save 2>&1`, { timeoutMs: 6 * MINUTE });
      expect(save.code).toBe(0);
      expect(save.stdout).toMatch(/suspend request via event channel/);
      await lab.mustExec("xl restore /tmp/gc-vbd.save", { timeoutMs: 6 * MINUTE });
      const newDomid = Number((await lab.mustExec(`xl domid ${name}`)).trim());
      expect(newDomid).not.toBe(domid);
      await waitForKey(lab, newDomid, 60_000);
      const fe = `/local/domain/${newDomid}/device/vbd/${VBD_ID}/state`;
      const st = await lab.mustExec(`i=0; until [ "$(xenstore-read ${fe} 2>/dev/null)" = 4 ]; do i=$((i+1)); [ $i -gt 600 ] && break; sleep 0.1; done; xenstore-read ${fe}`, { timeoutMs: 2 * MINUTE });
      const r = await lab.exec(`${CLI} checkpoint ${newDomid} --interval 0 --count 10 --path evtchn+evtchn --timeout 20000 --json`, { timeoutMs: 5 * MINUTE });
      const troubles = (await lab.exec(`grep -nE '${KERNEL_TROUBLE.source}' ${log}; true`)).stdout.trim();
      console.log(`(b) save/restore ${type}: domid ${domid} -> ${newDomid}, frontend state ${st.trim()}, checkpoints: ${r.stdout.trim().split("\n").pop() ?? ""}\nkernel trouble lines:\n${troubles || "(none)"}`);
      expect(st.trim()).toBe("4");
      expect(r.code).toBe(0);
      expect(troubles).toBe("");
      expectRunning(await xlState(lab, newDomid));
      await lab.mustExec(`xl block-detach ${newDomid} ${VBD}`, { timeoutMs: 2 * MINUTE });
      await lab.exec(`xl destroy ${name} 2>/dev/null; true`);
    }
  }, 30 * MINUTE);
});

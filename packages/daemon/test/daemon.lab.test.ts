// fastsuspendd on real Xen, installed from its .deb in the lab's dom0 (busybox dpkg: the dom0 has
// no Debian package database, hence --force-depends for nodejs and the Xen libraries, which are
// there as files). Everything runs in dom0 through the installed /usr/sbin/fastsuspendd and
// /usr/bin/fastsuspend; requests of the test's own go through the installed DaemonClient.
// Runs only through jest.lab.config.cjs with FASTSUSPEND_LAB naming a running lab.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";

import { attachSharedLab, stackDebInputs, stackFromEnv, type Guest, type Lab } from "@fastsuspend/lab";

const MINUTE = 60_000;
// The package for the stack under test: bookworm's from this tree's build (the host's libxen-dev),
// another stack's with the addon built against that release's libxen-dev and its Depends.
const STACK = stackFromEnv();
const DEB_DIR = STACK === "bookworm" ? join(__dirname, "..", "dist-deb") : join(__dirname, "..", "dist-deb", STACK);
const DEB = join(DEB_DIR, "fastsuspend_0.1.0_amd64.deb");
const LIB = "/usr/lib/fastsuspend/node_modules/@fastsuspend/daemon";
const RUN = "/run/fastsuspend";
const GUEST = "daemon-g";
const PATCHED = "daemon-pg";

/** One request through the installed client: prints the result or {error}. */
const REQ = `const {DaemonClient}=require("${LIB}");(async()=>{const c=await DaemonClient.connect({timeoutMs:120000});try{const r=await c.request(process.argv[1],JSON.parse(process.argv[2]||"{}"));process.stdout.write(JSON.stringify(r)+"\\n")}catch(e){process.stdout.write(JSON.stringify({error:{code:e.code,message:e.message}})+"\\n")}c.close()})()`;

/** Raw lines on one connection, then an oversize line on another; prints what came back. */
const RAW = `const net=require("net");const send=(t,n)=>new Promise(res=>{const s=net.createConnection("${RUN}/daemon.sock");let b="",out=[],closed=false;const done=()=>{s.destroy();res({out,closed})};s.on("data",d=>{b+=d;let i;while((i=b.indexOf("\\n"))>=0){out.push(JSON.parse(b.slice(0,i)));b=b.slice(i+1)}if(out.length>=n)setTimeout(done,200)});s.on("close",()=>{closed=true;done()});s.on("error",()=>{});s.write(t)});(async()=>{const a=await send('{oops\\n{"id":1,"op":"reboot"}\\n{"id":2,"op":"suspend","domid":"one"}\\n{"id":3,"op":"suspend","domid":0}\\n{"id":4,"op":"status","domid":4242}\\n{"id":5,"op":"metrics"}\\n',6);const big=await send('{"id":6,"op":"status","x":"'+"y".repeat(70000)+'"}\\n',1);process.stdout.write(JSON.stringify({a,big})+"\\n")})()`;

interface LoopJson {
  running: boolean;
  ok: number;
  failed: number;
  skipped: number;
  done: number;
  stoppedBy: string | null;
  lastSkip: string | null;
  lastError: string | null;
  startedAt: string;
  path: string | null;
}

describe("fastsuspendd in the lab's dom0", () => {
  let lab: Lab;
  let guest: Guest;
  let debInDom0: string;
  // The path the daemon picks for the stock guest, read from `info` in the first test.
  let fastestStockPath = "xenstore+evtchn";

  async function request<T>(op: string, params: Record<string, unknown> = {}): Promise<T> {
    const out = await lab.mustExec(["node", "-e", REQ, op, JSON.stringify(params)], { timeoutMs: 3 * MINUTE });
    return JSON.parse(out) as T;
  }

  async function xlState(): Promise<string> {
    return (await lab.mustExec(`xl list ${guest.domid} | awk 'NR==2{print $5}'`)).trim();
  }

  /**
   * While one of our loops runs, a sample of the state may catch a cycle in flight ("s"): a guest
   * left suspended is one that never shows running again. Polls for up to 10 s in dom0.
   */
  async function expectEventuallyRunning(d: number): Promise<void> {
    const st = await lab.mustExec(`for i in $(seq 1 100); do st=$(xl list ${d} | awk 'NR==2{print $5}'); case $st in [r-][b-]----) break;; esac; usleep 100000; done; echo $st`);
    expectRunning(st.trim());
  }

  /** A 100 ms checkpoint loop on a patched guest, once it has done 3 cycles on the guest's channel. */
  async function startChannelLoop(d: number): Promise<LoopJson | null> {
    await request("checkpoint.start", { domid: d, intervalMs: 100 });
    let loop: LoopJson | null = null;
    for (let i = 0; i < 120 && !(loop?.running === true && loop.ok >= 3); i++) {
      await new Promise((r) => setTimeout(r, 1000));
      loop = (await request<{ loop: LoopJson | null }>("status", { domid: d })).loop;
    }
    expect(loop).toMatchObject({ running: true, failed: 0 });
    expect(loop?.path ?? "").toMatch(/^evtchn\+/);
    return loop;
  }

  function expectRunning(state: string): void {
    // r b p s c d: not paused, not shut down (suspended), not crashed, not dying.
    expect(state).toMatch(/^[r-][b-]-{4}$/);
  }

  async function daemonPid(): Promise<number | undefined> {
    const r = await lab.exec(`cat ${RUN}/daemon.pid`);
    return r.code === 0 ? Number(r.stdout.trim()) : undefined;
  }

  let starts = 0;
  let lastLog = "";

  /** Starts the installed daemon in the background, waits until it listens; returns its log file. */
  async function startDaemon(): Promise<string> {
    const log = `/tmp/fastsuspendd-${++starts}.log`;
    lastLog = log;
    await lab.mustExec(`rm -f ${log}; setsid /usr/sbin/fastsuspendd </dev/null >${log} 2>&1 &`);
    // Not just the socket file: one left by a killed daemon is still there until the new one replaces it.
    await lab.mustExec(`i=0; until grep -q "listening on" ${log}; do i=$((i+1)); [ $i -gt 1800 ] && { cat ${log}; exit 1; }; usleep 100000; done`, { timeoutMs: 4 * MINUTE });
    return log;
  }

  /**
   * The daemon whose log is LOG starts kept loops again after it listens (main.ts): waits for its
   * line about domain D (started again, or why not) and returns it.
   */
  async function keptLoopLine(log: string, d: number): Promise<string> {
    const line = await lab.mustExec(`i=0; until grep -E "checkpoint dom${d}( |:).*(loop started again|not restarted:|not restarted \\(tried)" ${log}; do i=$((i+1)); [ $i -gt 1800 ] && { cat ${log}; exit 1; }; usleep 100000; done`, { timeoutMs: 4 * MINUTE });
    return line.trim();
  }

  async function ensureDaemon(): Promise<void> {
    const pid = await daemonPid();
    if (pid === undefined || (await lab.exec(`kill -0 ${pid}`)).code !== 0) await startDaemon();
  }

  /** A test that failed may have left the guest crashed: later tests get a fresh one (said in the log). */
  async function ensureGuest(): Promise<void> {
    const st = await lab.exec(`xl list ${GUEST} | awk 'NR==2{print $5}'`);
    if (st.code === 0 && /^[r-][b-]-{4}$/.test(st.stdout.trim())) return;
    console.log(`guest ${GUEST} was "${st.stdout.trim()}": recreating it`);
    await lab.exec(`xl destroy ${GUEST} 2>/dev/null; true`);
    guest = await lab.createGuest({ name: GUEST, timeoutMs: 5 * MINUTE });
  }

  async function stopDaemon(): Promise<void> {
    const pid = await daemonPid();
    if (pid !== undefined) await lab.exec(`kill -TERM ${pid} 2>/dev/null; i=0; while kill -0 ${pid} 2>/dev/null; do i=$((i+1)); [ $i -gt 100 ] && break; usleep 100000; done; true`, { timeoutMs: MINUTE });
  }

  beforeAll(async () => {
    lab = await attachSharedLab();
    // The package under test, built from this tree's dist (npm run build first).
    const forStack = STACK === "bookworm" ? [] : await stackDebInputs(STACK).then((d) => ["--out", DEB_DIR, "--addon", d.addon, "--lib-dir", d.libDir, "--shlibs-local", d.shlibsLocal]);
    const r = spawnSync("node", [join(__dirname, "..", "scripts", "build-deb.mjs"), ...forStack], { encoding: "utf8" });
    if (r.status !== 0 || !existsSync(DEB)) throw new Error(`build-deb failed: ${r.stderr}`);
    debInDom0 = lab.share(DEB);
    await stopDaemon();
    await lab.exec(`xl destroy ${GUEST} 2>/dev/null; rm -rf ${RUN}; true`);
    guest = await lab.createGuest({ name: GUEST, timeoutMs: 5 * MINUTE });
  }, 10 * MINUTE);

  afterAll(async () => {
    await stopDaemon();
    await lab.exec(`xl destroy ${GUEST} 2>/dev/null; true`);
    lab.disconnect();
  }, 3 * MINUTE);

  test("the .deb installs with dpkg -i (busybox dpkg; --force-depends: no package database for node and the Xen libraries)", async () => {
    await lab.mustExec("mkdir -p /var/lib/dpkg/info /var/lib/dpkg/updates && touch /var/lib/dpkg/status && (busybox dpkg -P fastsuspend >/dev/null 2>&1; true)");
    const strict = await lab.exec(["busybox", "dpkg", "-i", debInDom0], { timeoutMs: 3 * MINUTE });
    const forced = await lab.exec(["busybox", "dpkg", "-i", "--force-depends", debInDom0], { timeoutMs: 3 * MINUTE });
    console.log(`dpkg -i without --force-depends: exit ${strict.code} ${strict.stderr.trim().split("\n").slice(-2).join(" | ")}\ndpkg -i --force-depends: exit ${forced.code} (${forced.ms} ms)`);
    expect(forced.code).toBe(0);
    expect(await lab.mustExec("busybox dpkg -l | grep fastsuspend")).toMatch(/^ii\s+fastsuspend\s+0\.1\.0/m);
    await lab.mustExec(`test -x /usr/sbin/fastsuspendd && test -x /usr/bin/fastsuspend && test -f /lib/systemd/system/fastsuspendd.service && test -f ${LIB}/../xen/build/Release/xen.node`);
    expect(await lab.mustExec("/usr/bin/fastsuspend help checkpoint")).toMatch(/--no-daemon/);
  }, 8 * MINUTE);

  test("the daemon starts: socket 0600, pid file; a second daemon refuses to start; the CLI finds it", async () => {
    await startDaemon();
    expect((await lab.mustExec(`stat -c '%a %F' ${RUN}/daemon.sock`)).trim()).toBe("600 socket");
    const pid = await daemonPid();
    expect(pid).toBeGreaterThan(1);
    const second = await lab.exec("/usr/sbin/fastsuspendd", { timeoutMs: 2 * MINUTE });
    expect(second.code).not.toBe(0);
    expect(second.stderr).toMatch(/another fastsuspendd is running \(pid \d+/);
    const status = JSON.parse(await lab.mustExec("/usr/bin/fastsuspend status --json", { timeoutMs: 2 * MINUTE })) as { daemon: { pid: number }; domains: { domid: number; state: string }[] };
    expect(status.daemon.pid).toBe(pid);
    expect(status.domains).toEqual(expect.arrayContaining([expect.objectContaining({ domid: guest.domid, state: "running" })]));
    const info = await lab.mustExec(`/usr/bin/fastsuspend info ${guest.domid} --json`, { timeoutMs: 2 * MINUTE });
    // A stock guest: xenstore trigger; the notification is the hypervisor patch's where the lab
    // runs it (npm test's oxenstored lab), else a subscribed port.
    const caps = JSON.parse(info) as { hvNotify: { available: boolean } };
    fastestStockPath = caps.hvNotify.available ? "xenstore+virq" : "xenstore+evtchn";
    expect(caps).toMatchObject({ domid: guest.domid, chosen: fastestStockPath });
    const unknown = await lab.exec("/usr/bin/fastsuspend suspend 4242", { timeoutMs: 2 * MINUTE });
    expect([unknown.code, unknown.stderr.trim()]).toEqual([3, "fastsuspend: no domain 4242 (`xl list` shows the domains)"]);
  }, 8 * MINUTE);

  test("the CLI drives a 30 s checkpoint loop through the daemon; xl save -c of the same guest in the middle works", async () => {
    const d = guest.domid;
    await lab.mustExec(`rm -f /tmp/cp.*; (setsid sh -c '/usr/bin/fastsuspend checkpoint ${d} --interval 200 --count 1000000 --json >/tmp/cp.out 2>/tmp/cp.err; echo $? >/tmp/cp.rc' </dev/null >/dev/null 2>&1 &)`);
    // Wait for the loop to run (the CLI's node start is slow under TCG).
    let loop: LoopJson | null = null;
    for (let i = 0; i < 120 && !(loop?.running === true && loop.ok >= 3); i++) {
      await new Promise((r) => setTimeout(r, 1000));
      loop = (await request<{ loop: LoopJson | null }>("status", { domid: d })).loop;
    }
    expect(loop).toMatchObject({ running: true, failed: 0 });
    const startedAt = Date.parse(loop?.startedAt ?? "");
    const save = await lab.exec(`xl save -c ${d} /dev/null`, { timeoutMs: 3 * MINUTE });
    console.log(`xl save -c during the loop: exit ${save.code} in ${save.ms} ms`);
    expect(save.code).toBe(0);
    // The loop goes on after xl's save: a sample may catch one of its cycles (seen in the lab).
    await expectEventuallyRunning(d);
    // Let the loop reach 30 s (dom0's clock: startedAt is the daemon's).
    const dom0Now = async (): Promise<number> => Number((await lab.mustExec("date +%s")).trim()) * 1000;
    while ((await dom0Now()) - startedAt < 31_000) await new Promise((r) => setTimeout(r, 2000));
    const stopped = await request<{ loop: LoopJson }>("checkpoint.stop", { domid: d });
    await lab.mustExec("i=0; until [ -f /tmp/cp.rc ]; do i=$((i+1)); [ $i -gt 600 ] && exit 1; usleep 100000; done", { timeoutMs: 2 * MINUTE });
    const rc = (await lab.mustExec("cat /tmp/cp.rc")).trim();
    const cli = JSON.parse(await lab.mustExec("cat /tmp/cp.out")) as LoopJson & { cycleMs: { median: number; p99: number } };
    const stderr = await lab.mustExec("cat /tmp/cp.err");
    console.log(
      `checkpoint loop via fastsuspendd: ${cli.ok} ok, ${cli.failed} failed, ${cli.skipped} skipped (${String(cli.lastSkip)}), path ${String(cli.path)}, ` +
        `cycle median ${cli.cycleMs.median.toFixed(1)} ms p99 ${cli.cycleMs.p99.toFixed(1)} ms; CLI exit ${rc}; ${stderr.trim()}`,
    );
    expect(rc).toBe("0");
    expect(cli).toMatchObject({ running: false, failed: 0, stoppedBy: "request", path: fastestStockPath });
    expect(cli.ok).toBeGreaterThanOrEqual(10);
    expect(stopped.loop.ok).toBe(cli.ok);
    expectRunning(await xlState());
    // Nothing of ours held between requests: no lock file, and (checked by xl save above) no subscription.
    expect((await lab.exec(`test -e /var/run/xen/suspend-evtchn-${d}.lock`)).code).not.toBe(0);
  }, 15 * MINUTE);

  test("a patched guest (suspend channel): xl save -c in the middle of a loop works, the loop skips while xl has it, nothing of ours stays bound", async () => {
    // The defect this guards: the daemon kept the guest's channel bound for the whole loop, and
    // libxl (xc_suspend_evtchn_init_exclusive) failed to bind it: "failed to bind suspend event
    // channel ... Failed to save domain", while the loop reported every cycle ok.
    const kernel = process.env.FASTSUSPEND_GUEST_KERNEL_PATCHED;
    if (kernel === undefined || kernel === "") throw new Error("FASTSUSPEND_GUEST_KERNEL_PATCHED is not set: this test needs the patched guest kernel (npm test builds it)");
    await ensureDaemon();
    await lab.exec(`xl destroy ${PATCHED} 2>/dev/null; true`);
    const pg = await lab.createGuest({ name: PATCHED, kernel, timeoutMs: 5 * MINUTE });
    const d = pg.domid;
    try {
      const port = Number((await lab.mustExec(`xenstore-read /local/domain/${d}/device/suspend/event-channel`)).trim());
      expect(port).toBeGreaterThan(0);
      await startChannelLoop(d);
      const saves: string[] = [];
      for (let i = 0; i < 3; i++) {
        const save = await lab.exec(`xl -vvv save -c ${d} /dev/null`, { timeoutMs: 3 * MINUTE });
        const viaChannel = /event channel/i.test(save.stderr);
        saves.push(`exit ${save.code} in ${save.ms} ms${viaChannel ? " (libxl used the guest's channel)" : ""}`);
        if (save.code !== 0) console.log(`xl save -c #${i + 1} failed (exit ${save.code}); its last lines:\n${save.stderr.trim().split("\n").slice(-25).join("\n")}`);
        expect(save.code).toBe(0);
        await expectEventuallyRunning(d);
      }
      const stopped = await request<{ loop: LoopJson }>("checkpoint.stop", { domid: d });
      console.log(`patched guest: xl save -c during the daemon's loop: ${saves.join("; ")}\nloop: ${stopped.loop.ok} ok, ${stopped.loop.failed} failed, ${stopped.loop.skipped} skipped (${String(stopped.loop.lastSkip)}), path ${String(stopped.loop.path)}`);
      expect(stopped.loop.failed).toBe(0);
      expect(stopped.loop.ok).toBeGreaterThanOrEqual(3);
      // After the loop, nothing of ours is bound to the guest's channel: a plain xl save -c works too.
      const after = await lab.exec(`xl save -c ${d} /dev/null`, { timeoutMs: 3 * MINUTE });
      expect(after.code).toBe(0);
      expect((await lab.exec(`test -e /var/run/xen/suspend-evtchn-${d}.lock`)).code).not.toBe(0);
    } finally {
      await lab.exec(`xl destroy ${PATCHED} 2>/dev/null; true`);
    }
  }, 15 * MINUTE);

  // Needs HVM in the lab: only with an SVM CPU model (FASTSUSPEND_QEMU_CPU). Elsewhere it is
  // reported as skipped, never as passed.
  const hvmLab = /\bsvm\b/.test(process.env.FASTSUSPEND_QEMU_CPU ?? "");
  (hvmLab ? test : test.skip)("a patched PVH guest: xl save -c, then xl migrate to localhost, in the middle of a loop; the loop skips while xl has it, ends when the domain migrates away; nothing of ours left", async () => {
    // Issue 14 item 4 (coexistence) on the guest type people run; live migration needs log-dirty,
    // which a PV guest cannot get from Debian's Xen (no shadow paging): PVH only. The lab must
    // offer HVM (npm test with FASTSUSPEND_QEMU_CPU naming an SVM CPU).
    const kernel = process.env.FASTSUSPEND_GUEST_KERNEL_PATCHED;
    if (kernel === undefined || kernel === "") throw new Error("FASTSUSPEND_GUEST_KERNEL_PATCHED is not set: this test needs the patched guest kernel (npm test builds it)");
    const caps = await lab.mustExec("xl info | grep ^virt_caps");
    if (!/\bhvm\b/.test(caps)) throw new Error(`this lab's Xen offers no HVM (${caps.trim()}): boot it with FASTSUSPEND_QEMU_CPU="Opteron_G3,+svm,+npt,-rdtscp"`);
    await ensureDaemon();
    const name = `${PATCHED}-pvh`;
    await lab.exec(`xl destroy ${name} 2>/dev/null; true`);
    const pg = await lab.createGuest({ name, type: "pvh", kernel, timeoutMs: 5 * MINUTE });
    const d = pg.domid;
    // A stand-in for ssh: drops the host argument and runs the rest (xl migrate-receive) here.
    await lab.mustExec(`printf '#!/bin/sh\\nshift\\nexec sh -c "$*"\\n' >/tmp/fakessh && chmod +x /tmp/fakessh`);
    try {
      const loop = await startChannelLoop(d);
      const save = await lab.exec(`xl -vvv save -c ${d} /dev/null`, { timeoutMs: 3 * MINUTE });
      if (save.code !== 0) console.log(`xl save -c failed (exit ${save.code}):\n${save.stderr.trim().split("\n").slice(-25).join("\n")}`);
      expect(save.code).toBe(0);
      expect(save.stderr).toMatch(/suspend request via event channel/);
      await expectEventuallyRunning(d);
      // Let the loop come back before the migration, so that xl meets it again.
      for (let i = 0; i < 60; i++) {
        const l = (await request<{ loop: LoopJson | null }>("status", { domid: d })).loop;
        if ((l?.ok ?? 0) > (loop?.ok ?? 0)) break;
        await new Promise((r) => setTimeout(r, 1000));
      }
      const mig = await lab.exec(`xl -vvv migrate -s /tmp/fakessh ${d} localhost`, { timeoutMs: 5 * MINUTE });
      if (mig.code !== 0) console.log(`xl migrate failed (exit ${mig.code}):\n${mig.stderr.trim().split("\n").slice(-25).join("\n")}`);
      expect(mig.code).toBe(0);
      const nd = Number((await lab.mustExec(`xl domid ${name}`)).trim());
      expect(nd).not.toBe(d);
      expectRunning((await lab.mustExec(`xl list ${nd} | awk 'NR==2{print $5}'`)).trim());
      // The old domain is gone: its loop ended by itself (or the domain left the daemon's view), and
      // no cycle of it failed.
      let ended: { loop?: LoopJson | null; error?: { code: string } } = {};
      for (let i = 0; i < 60; i++) {
        ended = await request<{ loop?: LoopJson | null; error?: { code: string } }>("status", { domid: d });
        if (ended.error !== undefined || ended.loop?.running === false) break;
        await new Promise((r) => setTimeout(r, 1000));
      }
      const metrics = await request<string>("metrics");
      console.log(`patched PVH guest: xl save -c ${save.code} in ${save.ms} ms; xl migrate ${mig.code} in ${mig.ms} ms (dom${d} -> dom${nd}); after: ${JSON.stringify(ended)}`);
      if (ended.error !== undefined) expect(ended.error.code).toBe("ENODOMAIN");
      else expect(ended.loop).toMatchObject({ running: false, failed: 0, stoppedBy: "domain-gone" });
      // Labelled {domain (its name), domid, result}: see docs/daemon.md.
      expect(metrics).not.toMatch(new RegExp(`fastsuspend_checkpoint_cycles_total\\{domain="[^"]*",domid="${d}",result="failed"\\}`));
      expect(metrics).toMatch(new RegExp(`fastsuspend_checkpoint_cycles_total\\{domain="${name}",domid="${d}",result="ok"\\} [1-9]`));
      // Nothing of ours on the new domain: xl save -c of it takes its channel at once.
      const after = await lab.exec(`xl -vvv save -c ${nd} /dev/null`, { timeoutMs: 3 * MINUTE });
      expect(after.code).toBe(0);
      expect(after.stderr).toMatch(/suspend request via event channel/);
      for (const dd of [d, nd]) expect((await lab.exec(`test -e /var/run/xen/suspend-evtchn-${dd}.lock`)).code).not.toBe(0);
      expect(await lab.mustExec("cat /proc/locks")).not.toMatch(/FLOCK/);
    } finally {
      await lab.exec(`xl destroy ${name} 2>/dev/null; true`);
    }
  }, 20 * MINUTE);

  (hvmLab ? test : test.skip)("a patched PVH guest: xl remus -b runs checkpoints through its channel; stopped with SIGTERM it may leave the guest suspended, and fastsuspend resume brings it back; no triple fault", async () => {
    // Issue 13 item 3. Remus needs log-dirty: PVH only on Debian's Xen. The lab's SVM CPU runs TCG
    // single-threaded: under multi-threaded TCG these guests triple-fault (docs/results.md).
    const kernel = process.env.FASTSUSPEND_GUEST_KERNEL_PATCHED;
    if (kernel === undefined || kernel === "") throw new Error("FASTSUSPEND_GUEST_KERNEL_PATCHED is not set: this test needs the patched guest kernel (npm test builds it)");
    const name = `${PATCHED}-remus`;
    await lab.exec(`xl destroy ${name} 2>/dev/null; true`);
    const g = await lab.createGuest({ name, type: "pvh", kernel, timeoutMs: 5 * MINUTE });
    const d = g.domid;
    const runs: string[] = [];
    let channelCheckpoints = 0;
    try {
      await lab.mustExec("xl dmesg -c > /dev/null");
      for (let i = 0; i < 3; i++) {
        // SIGTERM after a different time each run, to land in different phases of a checkpoint.
        const secs = [20, 7, 13][i] ?? 10;
        const r = await lab.exec(
          `timeout -s TERM ${secs} xl -vvv remus -F -b -n -d -i 100 ${d} dummy > /tmp/remus-${i}.log 2>&1; echo "exit $?"; ` +
            `grep -c 'issuing PVH/HVM suspend request via event channel' /tmp/remus-${i}.log; xl list ${d} | awk 'NR==2{print $5}'; ` +
            `grep -c 'suspend request via XenBus' /tmp/remus-${i}.log`,
          { timeoutMs: 3 * MINUTE },
        );
        const [exit, count, state, viaXenbus] = r.stdout.trim().split("\n");
        let after = state ?? "";
        if (after.includes("s")) {
          // Left suspended by libxl: our documented way out.
          const res = await lab.exec(`/usr/bin/fastsuspend resume ${d}`, { timeoutMs: MINUTE });
          expect(res.code).toBe(0);
          after = (await lab.mustExec(`xl list ${d} | awk 'NR==2{print $5}'`)).trim();
        }
        runs.push(`run ${i + 1}: ${secs} s, ${String(exit)}, ${String(count)} checkpoints via the channel, ${String(viaXenbus)} via XenBus, state after ${String(state)}, then ${after}`);
        channelCheckpoints += Number(count);
        // How many fit in a run depends on the lab's load: libxl's first full copy of 128 MB takes
        // most of a short run under TCG (2 in 7 s once in CI, none in 7 s in session 13's trixie
        // run, where the 13 s and 20 s runs had dozens). What is asserted of every run is that
        // libxl never asked through xenstore: each checkpoint it took went through the channel.
        expect(Number(viaXenbus)).toBe(0);
        expectRunning(after);
      }
      expect(channelCheckpoints).toBeGreaterThanOrEqual(1);
      const xen = await lab.mustExec("xl dmesg");
      expect(xen).not.toMatch(/Triple fault/);
      // The guest still answers a suspend on its channel: nothing of remus's left on it.
      const save = await lab.exec(`xl -vvv save -c ${d} /dev/null`, { timeoutMs: 3 * MINUTE });
      expect(save.code).toBe(0);
      expect(save.stderr).toMatch(/suspend request via event channel/);
      expect((await lab.exec(`test -e /var/run/xen/suspend-evtchn-${d}.lock`)).code).not.toBe(0);
    } finally {
      console.log(`xl remus -b of a patched PVH guest:\n${runs.join("\n")}`);
      await lab.exec(`xl destroy ${name} 2>/dev/null; true`);
    }
  }, 15 * MINUTE);

  test("malformed, unknown, badly typed and oversized requests are refused; the daemon stays up", async () => {
    await ensureGuest();
    const out = JSON.parse(await lab.mustExec(["node", "-e", RAW], { timeoutMs: 3 * MINUTE })) as {
      a: { out: { id: unknown; ok: boolean; error?: { code: string } }[]; closed: boolean };
      big: { out: { id: unknown; ok: boolean; error?: { code: string } }[]; closed: boolean };
    };
    const byId = out.a.out.map((r) => [r.id, r.ok, r.error?.code ?? null]).sort((x, y) => String(x[0]).localeCompare(String(y[0])));
    expect(byId).toEqual([
      [1, false, "EUNKNOWNOP"],
      [2, false, "EINVAL"],
      [3, false, "ECONTROLDOMAIN"],
      [4, false, "ENODOMAIN"],
      [5, true, null],
      [null, false, "EPARSE"],
    ]);
    expect(out.a.closed).toBe(false);
    expect(out.big.out).toEqual([expect.objectContaining({ id: null, ok: false, error: expect.objectContaining({ code: "ETOOBIG" }) as unknown })]);
    expect(out.big.closed).toBe(true);
    const m = await request<string>("metrics");
    expect(m).toMatch(/fastsuspend_request_errors_total\{op="none",code="ETOOBIG"\} 1/);
    expect((await request<{ state: string }>("status", { domid: guest.domid })).state).toBe("running");
  }, 8 * MINUTE);

  test("kill -9 of the daemon in the middle of a loop, then a restart, leaves the guest running (and xl save -c still works)", async () => {
    await ensureGuest();
    const d = guest.domid;
    const outcomes: string[] = [];
    const logs: string[] = [];
    await ensureDaemon();
    for (let attempt = 0; attempt < 3; attempt++) {
      await request("checkpoint.start", { domid: d, intervalMs: 0 });
      // A domain is journalled per cycle (from right before the trigger until it is resumed).
      await lab.mustExec(`i=0; until grep -q '"domid":${d}' ${RUN}/journal.json 2>/dev/null; do i=$((i+1)); [ $i -gt 3000 ] && exit 1; usleep 10000; done`, { timeoutMs: MINUTE });
      // Aim for a moment when the guest is suspended: poll its state, kill as soon as it shows "s".
      const kill = await lab.mustExec(
        `p=$(cat ${RUN}/daemon.pid); st=; for i in $(seq 1 100); do st=$(xl list ${d} | awk 'NR==2{print $5}'); case $st in *s*) break;; esac; done; kill -9 $p; ` +
          `usleep 200000; echo "$st $(xl list ${d} | awk 'NR==2{print $5}') $(cat ${RUN}/journal.json)"`,
        { timeoutMs: 2 * MINUTE },
      );
      const [seen, after] = kill.trim().split(" ");
      // Still suspended after the kill: the dead daemon was inside a cycle, so it must be
      // journalled. (The state seen before the kill proves nothing: under TCG the daemon can
      // resume the guest and close its cycle between that `xl list` and the kill.)
      if (after?.includes("s") === true) expect(kill).toContain(`"domid":${d}`);
      outcomes.push(`attempt ${attempt + 1}: state when killed ${String(seen)}, after ${String(after)}`);
      const next = await startDaemon();
      logs.push(next);
      // The loop survives the crash (loops.json): the new daemon starts it again once it listens.
      // Stopped before the guest's state is sampled (a back-to-back loop has it suspended half the
      // time), and whatever is asserted, so that a later daemon does not restart it.
      try {
        expect(await keptLoopLine(next, d)).toMatch(/loop started again/);
        expect((await request<{ loop: LoopJson | null }>("status", { domid: d })).loop).toMatchObject({ running: true });
      } finally {
        await request("checkpoint.stop", { domid: d }).catch(() => undefined);
      }
      expectRunning(await xlState());
      if (after?.includes("s") === true) break; // the interesting case happened: it was left suspended
    }
    const log = await lab.mustExec(`cat ${logs.join(" ")}`);
    console.log(`${outcomes.join("\n")}\nrestart logs:\n${log}`);
    expect(log).toMatch(new RegExp(`replaced a stale pid file`));
    // Recovery has something to do only if a kill landed inside a cycle (journalled).
    if (outcomes.some((o) => /, after [^ ]*s/.test(o))) expect(log).toMatch(new RegExp(`recovery: domain ${d}: (resumed|running), suspend subscription reset`));
    expect(JSON.parse((await lab.mustExec(`cat ${RUN}/journal.json 2>/dev/null || echo '{"entries":[]}'`)).trim())).toMatchObject({ entries: [] });
    // The dead daemon's subscription is gone: xl save -c (which waits for @releaseDomain) works.
    const save = await lab.exec(`xl save -c ${d} /dev/null`, { timeoutMs: 3 * MINUTE });
    console.log(`xl save -c after recovery: exit ${save.code} in ${save.ms} ms`);
    expect(save.code).toBe(0);
    expectRunning(await xlState());
  }, 20 * MINUTE);

  test("SIGTERM in the middle of a loop: the daemon exits promptly (0.8 s deadline of its own), socket and pid file removed, guest running; the next daemon starts the loop again", async () => {
    await ensureGuest();
    const d = guest.domid;
    await ensureDaemon();
    const log = lastLog;
    await request("checkpoint.start", { domid: d, intervalMs: 0 });
    await new Promise((r) => setTimeout(r, 3000));
    const out = await lab.mustExec(
      `p=$(cat ${RUN}/daemon.pid); t0=$(awk '{print $1}' /proc/uptime); kill -TERM $p; while kill -0 $p 2>/dev/null; do usleep 10000; done; t1=$(awk '{print $1}' /proc/uptime); ` +
        `awk -v a=$t0 -v b=$t1 'BEGIN{printf "%d\\n", (b-a)*1000}'; ls ${RUN}`,
      { timeoutMs: MINUTE },
    );
    const [msText, ...files] = out.trim().split("\n");
    const ms = Number(msText);
    const tail = (await lab.mustExec(`tail -n 2 ${log}`)).trim();
    const state = await xlState();
    console.log(`SIGTERM to exit: ${ms} ms; left in ${RUN}: ${files.join(" ") || "nothing"}; guest ${state}; log: ${tail}`);
    // The daemon gives itself 0.8 s (main.ts) before it abandons the cycle in flight; what the
    // shell measures here adds Node's exit and its own polling in a TCG dom0, where that took
    // 1.5 s once. This bounds a hang, not the deadline (the log line says which way it stopped).
    expect(ms).toBeLessThanOrEqual(5000);
    expect(files).not.toContain("daemon.sock");
    expect(files).not.toContain("daemon.pid");
    if (/stopped in/.test(tail)) {
      // The cycle in flight finished: nothing left behind.
      expectRunning(state);
      expect(files).not.toContain("journal.json");
      expect((await lab.exec(`test -e /var/run/xen/suspend-evtchn-${d}.lock`)).code).not.toBe(0);
    } else {
      // Deadline: the journal is kept and the next start puts the guest back to running.
      expect(tail).toMatch(/stop deadline after \d+ ms: exiting with the journal kept/);
      const journalled = files.includes("journal.json") && (await lab.mustExec(`cat ${RUN}/journal.json`)).includes(`"domid":${d}`);
      const next = await startDaemon();
      if (journalled) expect(await lab.mustExec(`cat ${next}`)).toMatch(new RegExp(`recovery: domain ${d}: (resumed|running)`));
      expectRunning(await xlState());
    }
    // The daemon's stop keeps the loop for the next start (a restart, a package upgrade): the next
    // daemon starts it again, and says so.
    expect(files).toContain("loops.json");
    await ensureDaemon();
    let stopped: { loop: LoopJson } | undefined;
    try {
      expect(await keptLoopLine(lastLog, d)).toMatch(new RegExp(`checkpoint dom${d} \\(${GUEST}\\): loop started again`));
      expect((await request<{ loop: LoopJson | null }>("status", { domid: d })).loop).toMatchObject({ running: true });
    } finally {
      stopped = await request<{ loop: LoopJson }>("checkpoint.stop", { domid: d }).catch(() => undefined);
    }
    expect(stopped?.loop.stoppedBy).toBe("request");
    expect((await lab.exec(`test -e ${RUN}/loops.json && cat ${RUN}/loops.json`)).stdout).not.toContain(`"domid":${d}`);
  }, 8 * MINUTE);

  test("load: 16 clients polling status and metrics while a checkpoint loop runs", async () => {
    await ensureGuest();
    await ensureDaemon();
    const out = await lab.mustExec(`node /fastsuspend/packages/bench/dist/dom0/daemon-load.js --domid ${guest.domid} --clients 16 --count 30 --interval 100 --json`, { timeoutMs: 20 * MINUTE });
    await lab.mustExec(`mkdir -p /lab/results && printf '%s' '${out.trim()}' > /lab/results/daemon-load.json`);
    const r = JSON.parse(out) as { quiet: { cycles: number; failed: number; cycleMs: { p99: number } }; loaded: { cycles: number; failed: number; requests: number; requestsPerSecond: number; cycleMs: { p99: number } } };
    console.log(`load: ${out}`);
    expect([r.quiet.cycles, r.quiet.failed, r.loaded.cycles, r.loaded.failed]).toEqual([30, 0, 30, 0]);
    expect(r.loaded.requests).toBeGreaterThan(100);
    expectRunning(await xlState());
  }, 25 * MINUTE);

  test("recovery after a crash mid-cycle: a stock guest left suspended while xl save -c waits for its ack is resumed, and xl's save completes", async () => {
    // What a daemon killed mid-cycle leaves, made by hand (a kill -9 cannot aim at it): the stock
    // guest suspended by us, journalled. Then xl save -c: no lock for a guest without a channel; it
    // writes control/shutdown = suspend and waits (60 s) for an ack the suspended guest cannot give.
    // Recovery must resume it (xl has copied nothing yet), the guest then serves xl's request, and
    // the save goes on. (Left suspended, xl would give up after 60 s and the guest stay suspended.)
    await ensureGuest();
    const d = guest.domid;
    await stopDaemon();
    await lab.mustExec(`/usr/bin/fastsuspend suspend ${d} --no-daemon`, { timeoutMs: 2 * MINUTE });
    expect(await xlState()).toMatch(/s/);
    const journal = JSON.stringify({ version: 1, entries: [{ domid: d, reason: "checkpoint", since: "lab", pid: 1 }] });
    await lab.mustExec(`mkdir -p ${RUN} && chmod 700 ${RUN} && printf '%s\\n' '${journal}' > ${RUN}/journal.json`);
    await lab.mustExec(
      `rm -f /tmp/save-rec.out; (xl save -c ${d} /dev/null >/tmp/save-rec.out 2>&1; echo "exit $?" >>/tmp/save-rec.out) </dev/null >/dev/null 2>&1 & ` +
        `i=0; until [ "$(xenstore-read /local/domain/${d}/control/shutdown 2>/dev/null)" = suspend ]; do i=$((i+1)); [ $i -gt 300 ] && exit 1; usleep 100000; done`,
      { timeoutMs: 2 * MINUTE },
    );
    const t0 = Date.now();
    const log = await startDaemon();
    const started = Date.now() - t0;
    await lab.mustExec(`i=0; until grep -q '^exit ' /tmp/save-rec.out; do i=$((i+1)); [ $i -gt 1200 ] && exit 1; usleep 100000; done`, { timeoutMs: 3 * MINUTE });
    const save = await lab.mustExec("cat /tmp/save-rec.out");
    const text = await lab.mustExec(`cat ${log}`);
    console.log(`daemon up ${started} ms after xl wrote its request; recovery log:\n${text}\nxl save -c:\n${save}`);
    expect(text).toMatch(new RegExp(`recovery: domain ${d}: resumed.*pending in control/shutdown`));
    expect(save).toMatch(/^exit 0$/m);
    expectRunning(await xlState());
  }, 10 * MINUTE);
});

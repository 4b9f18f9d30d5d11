// The hypervisor series (hypervisor-patches/, docs/hypervisor.md): XEN_DOMCTL_suspend_notify on
// a real patched Xen with Debian's tools of the same release (4.17.5 with 4.17.7 on bookworm, 4.20.4
// with 4.20.4+63 on trixie: FASTSUSPEND_STACK). Boots its own lab (the patched image);
// the "stock" block checks, on the shared stock lab, that the coordinator sees the patch absent.
// dom0 is the registrant, through src/lab-probes/hv-probe.ts (the real binding). Runs through
// jest.lab.config.cjs only.
import { writeFileSync } from "node:fs";

import { attachSharedLab, Lab, stackFacts, stackFromEnv, type Guest } from "@fastsuspend/lab";

const CLI = "node /fastsuspend/packages/cli/dist/main.js";
const PROBE = "node /fastsuspend/packages/coordinator/dist/lab-probes/hv-probe.js";
const MINUTE = 60_000;
const EV_SUSPEND = 0x1;
const EV_DYING = 0x8;
// The stack npm test booted (FASTSUSPEND_STACK): its Xen release and domctl interface version.
const facts = stackFacts(stackFromEnv());
const [xenMajor = "", xenMinor = ""] = facts.xen.split(".");
/** The guests' hvprobe (assets/guest-hvprobe.c) must pass this stack's interface version. */
const HVPROBE_EXTRA = `fastsuspend.domctl_version=0x${facts.domctlInterfaceVersion.toString(16)}`;

function requireEnv(name: string): string {
  const v = process.env[name];
  if (v === undefined || v === "") throw new Error(`${name} is not set: these tests need that image (kernel/build.sh, hypervisor-patches/build.sh)`);
  return v;
}

interface ProbeLine {
  ready?: boolean; port?: number; bindEvent?: boolean;
  event?: number; t?: number; shutdown?: boolean; reason?: string | null; dying?: boolean; error?: string;
  unregistered?: string; done?: boolean; events?: number; eventsAfterUnregister?: number; fatal?: string;
}
const parseLines = (text: string): ProbeLine[] =>
  text.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as ProbeLine);

interface Summary { n: number; median: number | null; p99: number | null; min: number | null }
interface BenchPath { name: string; n: number; ok: number; failed: number; errors: string[]; totalMs: Summary; suspendMs: Summary }

async function xlState(lab: Lab, domid: number): Promise<string> {
  return (await lab.mustExec(`xl list ${domid} | awk 'NR==2{print $5}'`)).trim();
}
function expectRunning(state: string): void {
  expect(state).toMatch(/^[r-][b-]-{4}$/);
}

/** Shell: start a listener in the background into LOG and wait (bounded) until it is armed. */
const startListener = (log: string, dom: number, mask: number, seconds: number, pidVar: string): string =>
  `${PROBE} listen ${dom} ${mask} ${seconds} >${log} 2>&1 & ${pidVar}=$!; ` +
  `i=0; until grep -q '"ready"' ${log}; do i=$((i+1)); [ $i -gt 600 ] && { echo "listener ${log} never ready"; cat ${log}; exit 1; }; sleep 0.1; done`;
/** Shell: stop a listener gracefully (it unregisters and prints its summary), bounded. */
const stopListener = (pidVar: string): string =>
  `kill -TERM $${pidVar} 2>/dev/null || true; i=0; while kill -0 $${pidVar} 2>/dev/null; do i=$((i+1)); [ $i -gt 100 ] && kill -9 $${pidVar}; sleep 0.1; done`;
/** Shell: suspend (xenstore trigger, the stock path) and resume cooperatively, then settle. */
const cycle = (dom: number): string =>
  `${CLI} suspend ${dom} --path xenstore+watch --timeout 20000 >/dev/null && ${CLI} resume ${dom} >/dev/null && sleep 1`;
const countEvents = (log: string): string => `grep -c '"event"' ${log} || true`;

describe("XEN_DOMCTL_suspend_notify on the patched hypervisor", () => {
  let lab: Lab | undefined;
  let a: Guest;
  let b: Guest;
  const hypervisor = requireEnv("FASTSUSPEND_HYPERVISOR_PATCHED");
  const kernel = requireEnv("FASTSUSPEND_GUEST_KERNEL_PATCHED");
  const L = (): Lab => {
    if (lab === undefined) throw new Error("the patched lab did not come up");
    return lab;
  };

  // npm test boots its oxenstored lab with the patched hypervisor and names it here; otherwise
  // (a developer's run) this file boots a lab of its own.
  const shared = process.env.FASTSUSPEND_LAB_HV !== undefined && process.env.FASTSUSPEND_LAB_HV !== "";

  beforeAll(async () => {
    requireEnv("FASTSUSPEND_GUEST_KERNEL_STOCK");
    lab = shared
      ? await attachSharedLab("FASTSUSPEND_LAB_HV")
      : await Lab.up({ name: `${process.env.FASTSUSPEND_LAB ?? "dev"}-hv`, stack: facts.stack, hypervisor, guestKernel: kernel, bootTimeoutMs: 5 * MINUTE });
    await lab.exec("xl destroy hv-a 2>/dev/null; xl destroy hv-b 2>/dev/null; true");
    // hv-a's config (and so its extra) is also the device-model guest's template below.
    a = await lab.createGuest({ name: "hv-a", kernel, extra: HVPROBE_EXTRA });
    b = await lab.createGuest({ name: "hv-b", kernel, extra: HVPROBE_EXTRA });
  }, 12 * MINUTE);

  afterAll(async () => {
    if (lab === undefined) return;
    try {
      await lab.exec("xl destroy hv-a 2>/dev/null; xl destroy hv-b 2>/dev/null; true");
    } finally {
      if (shared) lab.disconnect();
      else await lab.down();
    }
  }, 2 * MINUTE);

  test(`the patched ${facts.patchedXenVersion} hypervisor runs Debian's ${facts.toolsVersion} tools (same domctl interface version)`, async () => {
    expect(L().stack).toBe(facts.stack);
    const info = await L().mustExec("xl info");
    expect(info).toMatch(new RegExp(`^xen_major\\s*:\\s*${xenMajor}$`, "m"));
    expect(info).toMatch(new RegExp(`^xen_minor\\s*:\\s*${xenMinor}$`, "m"));
    // The patched image's own patch level (4.17.5, 4.20.4), not Debian's stock one.
    const extra = facts.patchedXenVersion.slice(facts.xen.length).replaceAll(".", "\\.");
    expect(info).toMatch(new RegExp(`^xen_extra\\s*:\\s*${extra}`, "m"));
    const tools = await L().mustExec(`dpkg-query -W -f '\${Version}' xen-utils-${facts.xen} 2>/dev/null || ls /usr/lib/xen-${facts.xen}/bin | head -1`);
    console.log(`xl info: ${/xen_version\s*:\s*(\S+)/.exec(info)?.[1] ?? "?"}, tools: ${tools}`);
    const list = await L().mustExec("xl list");
    expect(list).toMatch(/^Domain-0\s+0\s/m);
    expect(list).toMatch(/^hv-a\s/m);
    const version = await L().mustExec(`node -e 'const x=require("/fastsuspend/node_modules/@fastsuspend/xen").openXen(); console.log(x.domctlLayout.interfaceVersion); x.close()'`);
    expect(Number(version.trim())).toBe(facts.domctlInterfaceVersion);
    // A domctl with that version is accepted (EACCES would mean a mismatch).
    const q = parseLines(await L().mustExec(`${PROBE} query ${a.domid}`));
    expect(q).toEqual([{ regs: [] }] as unknown as ProbeLine[]);
  });

  test("a registrant is notified when its target suspends, not when another domain does", async () => {
    const out = await L().mustExec(
      [
        "set -e",
        "rm -f /tmp/hv-l1.log",
        startListener("/tmp/hv-l1.log", a.domid, EV_SUSPEND | EV_DYING, 600, "p1"),
        cycle(b.domid),
        `echo "afterOther=$(${countEvents("/tmp/hv-l1.log")})"`,
        cycle(a.domid),
        `echo "afterTarget=$(${countEvents("/tmp/hv-l1.log")})"`,
        stopListener("p1"),
        "echo --log--; cat /tmp/hv-l1.log",
      ].join("\n"),
      { timeoutMs: 4 * MINUTE },
    );
    expect(out).toMatch(/^afterOther=0$/m);
    expect(out).toMatch(/^afterTarget=1$/m);
    const lines = parseLines(out.split("--log--")[1] ?? "");
    expect(lines[0]).toMatchObject({ ready: true, bindEvent: true });
    expect(lines.filter((l) => l.event !== undefined)).toEqual([expect.objectContaining({ event: 1, shutdown: true, reason: "suspend", dying: false })]);
    expect(lines.at(-1)).toMatchObject({ done: true, events: 1, unregistered: "OK" });
    expectRunning(await xlState(L(), a.domid));
    expect(parseLines(await L().mustExec(`${PROBE} query ${a.domid}`))).toEqual([{ regs: [] }] as unknown as ProbeLine[]);
  }, 5 * MINUTE);

  test("two registrants are both notified, and @releaseDomain still fires", async () => {
    const out = await L().mustExec(
      [
        "set -e",
        "rm -f /tmp/hv-l1.log /tmp/hv-l2.log /tmp/hv-rd.log",
        startListener("/tmp/hv-l1.log", a.domid, EV_SUSPEND, 600, "p1"),
        startListener("/tmp/hv-l2.log", a.domid, EV_SUSPEND | EV_DYING, 600, "p2"),
        `${PROBE} query ${a.domid} | sed 's/^/query: /'`,
        "xenstore-watch @releaseDomain >/tmp/hv-rd.log 2>&1 & w=$!",
        "sleep 1",
        "echo rdBefore=$(wc -l </tmp/hv-rd.log)",
        cycle(a.domid),
        "echo rdAfter=$(wc -l </tmp/hv-rd.log)",
        "kill $w 2>/dev/null || true",
        stopListener("p1"),
        stopListener("p2"),
        "echo --l1--; cat /tmp/hv-l1.log; echo --l2--; cat /tmp/hv-l2.log",
      ].join("\n"),
      { timeoutMs: 4 * MINUTE },
    );
    const query = JSON.parse(/^query: (.*)$/m.exec(out)?.[1] ?? "{}") as { regs: { registrant: number; mask: number; flags: number; port: number }[] };
    expect(query.regs.map((r) => [r.registrant, r.mask, r.flags])).toEqual([[0, EV_SUSPEND, 0], [0, EV_SUSPEND | EV_DYING, 0]]);
    expect(query.regs[0]?.port).not.toBe(query.regs[1]?.port);
    const before = Number(/^rdBefore=(\d+)/m.exec(out)?.[1]);
    const after = Number(/^rdAfter=(\d+)/m.exec(out)?.[1]);
    expect(after).toBeGreaterThan(before); // VIRQ_DOM_EXC -> xenstored -> @releaseDomain
    const [, l1 = "", l2 = ""] = out.split(/--l[12]--\n/);
    for (const log of [l1, l2]) {
      const lines = parseLines(log);
      expect(lines.filter((l) => l.event !== undefined)).toEqual([expect.objectContaining({ shutdown: true, reason: "suspend" })]);
      expect(lines.at(-1)).toMatchObject({ done: true, events: 1, unregistered: "OK" });
    }
  }, 5 * MINUTE);

  test("after UNREGISTER no more notifications, and QUERY shows the registration gone", async () => {
    const out = await L().mustExec(
      [
        "set -e",
        "rm -f /tmp/hv-l1.log",
        startListener("/tmp/hv-l1.log", a.domid, EV_SUSPEND, 600, "p1"),
        cycle(a.domid),
        "kill -USR1 $p1",
        "i=0; until grep -q '\"unregistered\"' /tmp/hv-l1.log; do i=$((i+1)); [ $i -gt 100 ] && exit 1; sleep 0.1; done",
        `${PROBE} query ${a.domid} | sed 's/^/query: /'`,
        cycle(a.domid),
        cycle(a.domid),
        stopListener("p1"),
        "echo --log--; cat /tmp/hv-l1.log",
      ].join("\n"),
      { timeoutMs: 4 * MINUTE },
    );
    expect(out).toMatch(/^query: \{"regs":\[\]\}$/m);
    const lines = parseLines(out.split("--log--")[1] ?? "");
    expect(lines.find((l) => l.unregistered !== undefined && l.done === undefined)).toMatchObject({ unregistered: "OK" });
    expect(lines.at(-1)).toMatchObject({ done: true, events: 1, eventsAfterUnregister: 0 });
  }, 5 * MINUTE);

  test("a registration ends with its binding: kill -9 of the listener leaves nothing registered", async () => {
    // The registrant is the domain, but the consumer is a process; when it dies its event-channel
    // device closes the local end, and Xen drops the registration (patch 0004).
    const out = await L().mustExec(
      [
        "set -e",
        "for k in 1 2 3; do",
        "rm -f /tmp/hv-l1.log",
        startListener("/tmp/hv-l1.log", a.domid, EV_SUSPEND | EV_DYING, 600, "p1"),
        `${PROBE} query ${a.domid} | sed "s/^/armed$k: /"`,
        "kill -9 $p1; wait $p1 2>/dev/null || true",
        `${PROBE} query ${a.domid} | sed "s/^/killed$k: /"`,
        "done",
        cycle(a.domid),
      ].join("\n"),
      { timeoutMs: 4 * MINUTE },
    );
    for (const k of [1, 2, 3]) {
      const armed = JSON.parse(new RegExp(`^armed${k}: (.*)$`, "m").exec(out)?.[1] ?? "{}") as { regs?: { registrant: number; mask: number }[] };
      expect(armed.regs?.map((r) => [r.registrant, r.mask])).toEqual([[0, EV_SUSPEND | EV_DYING]]);
      expect(out).toMatch(new RegExp(`^killed${k}: \\{"regs":\\[\\]\\}$`, "m"));
    }
    expectRunning(await xlState(L(), a.domid)); // and the target still suspends and resumes
  }, 5 * MINUTE);

  test("at most 8 registrations per target: the 9th REGISTER is EBUSY; QUERY lists them in order", async () => {
    const r = JSON.parse((await L().mustExec(`${PROBE} bound ${a.domid}`)).trim()) as {
      registered: number; ninth: string; query: { registrant: number; mask: number; port: number }[];
      afterUnregister: number; reRegister: string; afterReRegister: number; cleanupProblems: string[]; final: number;
    };
    expect(r.registered).toBe(8);
    expect(r.ninth).toBe("EBUSY");
    expect(r.query).toHaveLength(8);
    expect(r.query.map((q) => q.registrant)).toEqual(Array(8).fill(0));
    expect(r.query.map((q) => q.mask)).toEqual([1, 9, 1, 9, 1, 9, 1, 9]);
    expect(new Set(r.query.map((q) => q.port)).size).toBe(8);
    expect([r.afterUnregister, r.reRegister, r.afterReRegister, r.cleanupProblems, r.final]).toEqual([7, "OK", 8, [], 0]);
  }, 3 * MINUTE);

  test("bad arguments are refused with the documented errno", async () => {
    const r = JSON.parse((await L().mustExec(`${PROBE} errors ${a.domid}`)).trim()) as Record<string, string>;
    expect(r).toEqual({
      noSuchDomain: "ESRCH",
      self: "EINVAL",
      emptyMask: "EINVAL",
      unknownMaskBit: "EINVAL",
      unknownFlag: "EINVAL",
      padSet: "EINVAL",
      op0: "EOPNOTSUPP",
      op4: "EOPNOTSUPP",
      unregisterUnknownPort: "ENOENT",
      unregisterPort0: "EINVAL",
      unregisterCookie0: "EINVAL",
      queryAfter: "0",
    });
  }, 2 * MINUTE);

  test("an unprivileged guest cannot register nor query (EPERM)", async () => {
    // The guest's init ran packages/lab/assets/guest-hvprobe.c before it said READY: REGISTER and
    // QUERY on dom0, from the guest's own privcmd, with the interface version HVPROBE_EXTRA names
    // (a wrong one would be EACCES), and printed the errnos on its console.
    const log = await L().mustExec("grep -a FASTSUSPEND-GUEST-HVPROBE /var/log/xen/console/guest-hv-a.log");
    expect(log.trim().split("\n")[0]?.trim()).toBe("FASTSUSPEND-GUEST-HVPROBE register=EPERM query=EPERM");
  });

  // Needs HVM in the lab (a PVH target): only with an SVM CPU model. Elsewhere it is reported as
  // skipped, never as passed.
  const hvmLab = /\bsvm\b/.test(process.env.FASTSUSPEND_QEMU_CPU ?? "");
  (hvmLab ? test : test.skip)("a device model of the target (set_target) cannot register, with or without F_NO_DOM_EXC, nor query (EPERM)", async () => {
    // Issue 15, finding 5. XEN_DOMCTL_set_target only takes an HVM/PVH target in 4.17, so the target
    // is a PVH guest (never unpaused: only its type matters) and the device model a PV guest created
    // paused, made the target's device model, then unpaused: its init runs guest-hvprobe.c, which
    // sees fastsuspend.hvprobe_dm=T and tries REGISTER (with and without the flag) and QUERY on T.
    const info = await L().mustExec("xl info");
    // Nehalem (the lab's default CPU model) gives Xen no SVM: no PVH guest, hence no set_target.
    if (!/^virt_caps\s*:.*\bhvm\b/m.test(info)) throw new Error("FASTSUSPEND_QEMU_CPU names an SVM CPU, but xl info shows no hvm in virt_caps");
    const cfg = "/lab/guests/hv-a.cfg";
    const dmLog = "/var/log/xen/console/guest-hv-dm.log";
    const out = await L().mustExec(
      [
        "set -e",
        "xl destroy hv-dm 2>/dev/null || true; xl destroy hv-t 2>/dev/null || true; rm -f " + dmLog,
        `sed -e 's/^name = .*/name = "hv-t"/' -e 's/^type = .*/type = "pvh"/' ${cfg} >/tmp/hv-t.cfg`,
        "xl create -p /tmp/hv-t.cfg 2>&1 | sed 's/^/xl-create: /'",
        "t=$(xl domid hv-t)",
        `sed -e 's/^name = .*/name = "hv-dm"/' -e "s/^extra = \\"\\(.*\\)\\"/extra = \\"\\1 fastsuspend.hvprobe_dm=$t\\"/" ${cfg} >/tmp/hv-dm.cfg`,
        "xl create -p /tmp/hv-dm.cfg 2>&1 | sed 's/^/xl-create: /'",
        "dm=$(xl domid hv-dm)",
        'echo "t=$t dm=$dm"',
        `${PROBE} settarget $dm $t | sed 's/^/settarget: /'`,
        "xl unpause hv-dm",
        `i=0; until grep -q FASTSUSPEND-GUEST-HVPROBE-DM ${dmLog} 2>/dev/null; do i=$((i+1)); [ $i -gt 1200 ] && break; sleep 0.1; done`,
        `grep -a FASTSUSPEND-GUEST-HVPROBE-DM ${dmLog} | sed 's/^/console: /' || true`,
        `${PROBE} query $t | sed 's/^/queryWithDm: /'`,
        `${PROBE} try $t | sed 's/^/dom0WithDm: /'`,
        "xl destroy hv-dm",
        `${PROBE} query $t | sed 's/^/queryAfterDm: /'`,
        "xl destroy hv-t",
        "xl list | sed 's/^/xl: /'",
      ].join("\n"),
      { timeoutMs: 4 * MINUTE },
    );
    console.log(out.split("\n").filter((l) => /^(xl-create|t=|settarget|console|query|dom0)/.test(l)).join("\n"));
    const t = Number(/^t=(\d+) dm=\d+$/m.exec(out)?.[1]);
    expect(out).toMatch(/^settarget: \{"settarget":"OK"\}$/m);
    expect(/^console: (.*)$/m.exec(out)?.[1]?.trim()).toBe(
      `FASTSUSPEND-GUEST-HVPROBE-DM target=${t} register_no_dom_exc=EPERM register=EPERM filled=0 then=EPERM query=EPERM`,
    );
    // Nothing of the device model's on its target, and the toolstack's REGISTER is not crowded out.
    expect(out).toMatch(/^queryWithDm: \{"regs":\[\]\}$/m);
    expect(JSON.parse(/^dom0WithDm: (.*)$/m.exec(out)?.[1] ?? "{}")).toMatchObject({ register: "OK", nrWhileRegistered: 1, unregister: "OK" });
    expect(out).toMatch(/^queryAfterDm: \{"regs":\[\]\}$/m);
    expect(out).not.toMatch(/^xl: hv-(dm|t)\s/m);
  }, 5 * MINUTE);

  test("a late UNREGISTER of a port number handed out again does not remove the new registration (cookie)", async () => {
    // Issue 15, finding 6: closing the binding ends a registration and frees its port (patch 0004);
    // the next REGISTER gets the same number; the first one's UNREGISTER must now be ENOENT.
    const r = JSON.parse((await L().mustExec(`${PROBE} aba ${a.domid}`)).trim()) as {
      afterUnbind: number; firstPort: number; secondPort: number; reused: boolean; cookiesDiffer: boolean;
      staleUnregister: string; queryAfter: number[]; ownUnregister: string; final: number;
    };
    console.log(`aba: ${JSON.stringify(r)}`);
    expect(r.afterUnbind).toBe(0);
    expect(r.reused).toBe(true); // the hazard is real: same port number
    expect(r.cookiesDiffer).toBe(true);
    expect(r.staleUnregister).toBe("ENOENT");
    expect(r.queryAfter).toEqual([r.secondPort]);
    expect([r.ownUnregister, r.final]).toEqual(["OK", 0]);
  }, 2 * MINUTE);

  test("a registration never bound is reclaimed after the bind timeout (registrant killed before its bind)", async () => {
    // Issue 15, finding 11: 8 registrations whose process died before binding (never bound: no
    // binding to close) held all of the target's slots until it died. Xen gives 30 s to bind
    // (XEN_DOMCTL_SUSPEND_NOTIFY_BIND_TIMEOUT); a later REGISTER reclaims them.
    await L().exec("xl destroy hv-c 2>/dev/null; true");
    const c = await L().createGuest({ name: "hv-c", kernel });
    try {
      const out = await L().mustExec(
        [
          "set -e",
          `${PROBE} unbound ${c.domid} 8 | sed 's/^/stale: /'`,
          `${PROBE} try ${c.domid} | sed 's/^/early: /'`,
          "sleep 32",
          `${PROBE} try ${c.domid} | sed 's/^/late: /'`,
          `${PROBE} query ${c.domid} | sed 's/^/query: /'`,
        ].join("\n"),
        { timeoutMs: 3 * MINUTE },
      );
      console.log(out);
      const line = (k: string): Record<string, unknown> => JSON.parse(new RegExp(`^${k}: (.*)$`, "m").exec(out)?.[1] ?? "{}") as Record<string, unknown>;
      expect(line("stale")).toMatchObject({ registered: 8, stop: "OK" });
      expect(line("early")).toMatchObject({ register: "EBUSY", nrWhileRegistered: 8 }); // within the timeout: kept
      expect(line("late")).toMatchObject({ register: "OK", nrWhileRegistered: 1, unregister: "OK", nrAfter: 0 });
      expect(out).toMatch(/^query: \{"regs":\[\]\}$/m);
    } finally {
      await L().exec("xl destroy hv-c 2>/dev/null; true");
    }
  }, 4 * MINUTE);

  test("the coordinator detects the patch: info shows hvNotify available and the +virq paths", async () => {
    const caps = JSON.parse(await L().mustExec(`${CLI} info ${a.domid} --json`)) as { hvNotify: { available: boolean }; paths: string[]; guestChannel: { status: string } };
    expect(caps.hvNotify.available).toBe(true);
    expect(caps.guestChannel.status).toBe("ok");
    expect(caps.paths).toEqual(expect.arrayContaining(["evtchn+virq", "xenstore+virq", "evtchn+evtchn", "xenstore+watch"]));
    expect(caps.paths[0]).toBe("evtchn+virq");
  });

  test("bench: six paths, 50 cycles each, same guest, same run", async () => {
    const file = "/tmp/hv-bench.json";
    // 50 cycles per path, not 100: CI's 90 minutes hold the core suites twice (bookworm and
    // trixie) on 2 cores (docs/lab.md, session 14); every cycle of every path must still succeed.
    // bench-run's default: the seed's six paths, stock first (BENCH_PATHS in packages/cli).
    const paths = ["xenstore+watch", "xenstore+poll", "xenstore+evtchn", "evtchn+evtchn", "evtchn+virq", "xenstore+virq"];
    const r = await L().exec(`${CLI} bench-run ${a.domid} --cycles 50 --interval 20 --xl-save 0 --timeout 20000 --output ${file}`, { timeoutMs: 30 * MINUTE });
    const json = JSON.parse(await L().mustExec(`cat ${file}`)) as { xen: string; xenstored: string; paths: BenchPath[] };
    const by = (n: string): BenchPath => {
      const p = json.paths.find((x) => x.name === n);
      if (p === undefined) throw new Error(`bench-run did not run ${n}`);
      return p;
    };
    // Summaries of a path with no good cycle are null: print "-" and let the assertions say why.
    const f = (x: number | null): string => (x === null ? "-" : x.toFixed(1));
    const base = by("xenstore+watch").totalMs.median;
    const table = [
      `xen ${json.xen} (patched), ${json.xenstored}, patched guest kernel, domid ${a.domid}, 50 cycles per path, 20 ms apart`,
      "",
      "| path | cycle median (ms) | p99 | min | suspend median | median vs xenstore+watch | ok | first error |",
      "|---|---:|---:|---:|---:|---:|---:|---|",
      ...paths.map((n) => {
        const p = by(n);
        const ratio = p.totalMs.median === null || base === null ? "-" : (p.totalMs.median / base).toFixed(2);
        return `| \`${n}\` | ${f(p.totalMs.median)} | ${f(p.totalMs.p99)} | ${f(p.totalMs.min)} | ${f(p.suspendMs.median)} | ${ratio} | ${p.ok}/${p.n} | ${p.errors[0] ?? ""} |`;
      }),
    ].join("\n");
    console.log(table);
    if (process.env.FASTSUSPEND_RESULTS_DIR) writeFileSync(`${process.env.FASTSUSPEND_RESULTS_DIR}/hv-notify-bench.md`, `${table}\n`);
    expect(json.paths.map((p) => p.name)).toEqual(paths);
    for (const p of json.paths) expect([p.name, p.ok, p.failed, p.errors]).toEqual([p.name, 50, 0, []]);
    expect(r.code).toBe(0);
    expectRunning(await xlState(L(), a.domid));
    // Nothing of ours left registered on the target.
    expect(parseLines(await L().mustExec(`${PROBE} query ${a.domid}`))).toEqual([{ regs: [] }] as unknown as ProbeLine[]);
  }, 35 * MINUTE);

  test("a checkpoint loop on a +virq path fires no @releaseDomain, and xl create works right after it", async () => {
    // Session 15: each of our cycles raised VIRQ_DOM_EXC, xenstored fired @releaseDomain, and Xen
    // 4.20's xenconsoled (one 32751-domain getinfolist per event) ran at 100% of a vCPU and fell
    // behind: after 3000 cycles `xl create` failed on the console tty's 10 s wait. Our suspends
    // now hold the VIRQ back (F_NO_DOM_EXC, bound only while the suspend is ours).
    const out = await L().mustExec(
      [
        "set -e",
        "rm -f /tmp/hv-rd2.log",
        "xenstore-watch @releaseDomain >/tmp/hv-rd2.log 2>&1 & w=$!",
        "sleep 1",
        "echo rdBefore=$(wc -l </tmp/hv-rd2.log)",
        ...["evtchn+virq", "xenstore+virq"].map((p) => `${CLI} checkpoint ${a.domid} --interval 0 --count 30 --path ${p} --timeout 20000 --json | tail -1 | sed 's/^/loop: /'`),
        "sleep 1",
        "echo rdAfter=$(wc -l </tmp/hv-rd2.log)",
        "kill $w 2>/dev/null || true",
      ].join("\n"),
      { timeoutMs: 10 * MINUTE },
    );
    const loops = [...out.matchAll(/^loop: (.*)$/gm)].map((m) => JSON.parse(m[1] ?? "{}") as { ok: number; failed: number });
    expect(loops.map((l) => [l.ok, l.failed])).toEqual([[30, 0], [30, 0]]);
    expect(Number(/^rdAfter=(\d+)/m.exec(out)?.[1])).toBe(Number(/^rdBefore=(\d+)/m.exec(out)?.[1]));
    const c = await L().createGuest({ name: "hv-after-loop", kernel });
    await L().destroyGuest(c.name);
    expect(parseLines(await L().mustExec(`${PROBE} query ${a.domid}`))).toEqual([{ regs: [] }] as unknown as ProbeLine[]);
  }, 12 * MINUTE);

  test("destroying the target notifies DYING once and leaves no registration", async () => {
    const out = await L().mustExec(
      [
        "set -e",
        "rm -f /tmp/hv-l1.log",
        startListener("/tmp/hv-l1.log", b.domid, EV_SUSPEND | EV_DYING, 600, "p1"),
        `xl destroy ${b.domid}`,
        "i=0; until grep -q '\"event\"' /tmp/hv-l1.log; do i=$((i+1)); [ $i -gt 100 ] && break; sleep 0.1; done",
        "sleep 1",
        stopListener("p1"),
        `echo "query: $(${PROBE} query ${b.domid} 2>&1)"`,
        "echo --log--; cat /tmp/hv-l1.log",
        "xl list | sed 's/^/xl: /'",
      ].join("\n"),
      { timeoutMs: 3 * MINUTE },
    );
    const lines = parseLines(out.split("--log--")[1] ?? "");
    const events = lines.filter((l) => l.event !== undefined);
    expect(events).toHaveLength(1);
    // The event is DYING, not a suspend: getdomaininfo shows no shutdown. (It does not show
    // XEN_DOMINF_dying either while domain_kill() is still relinquishing memory: Xen sets that
    // flag only at DOMDYING_dead, so "dying: false" or ESRCH are both what DYING looks like.)
    const e0 = events[0];
    expect(e0?.error === "ESRCH" || e0?.shutdown === false ? "not a shutdown" : JSON.stringify(e0)).toBe("not a shutdown");
    expect(lines.at(-1)).toMatchObject({ done: true, events: 1 });
    expect(["ENOENT", "ESRCH"]).toContain(lines.at(-1)?.unregistered);
    // Either the zombie has no registrations or the domain is gone.
    expect(out).toMatch(/^query: (\{"regs":\[\]\}|\{"fatal":"ESRCH"\})$/m);
    expect(out).not.toMatch(/^xl: hv-b\s/m);
  }, 4 * MINUTE);
});

describe("XEN_DOMCTL_suspend_notify absent on the stock shared lab", () => {
  let lab: Lab | undefined;
  beforeAll(async () => {
    // npm test names its stock-Xen lab (the cxenstored one); a developer's shared lab is stock.
    lab = await attachSharedLab(process.env.FASTSUSPEND_LAB_STOCK ? "FASTSUSPEND_LAB_STOCK" : "FASTSUSPEND_LAB");
    await lab.exec("xl destroy hv-stock-probe 2>/dev/null; true");
  }, 2 * MINUTE);
  afterAll(async () => {
    if (lab === undefined) return;
    await lab.exec("xl destroy hv-stock-probe 2>/dev/null; true");
    lab.disconnect();
  });

  test("the coordinator sees ENOSYS: hvNotify not available, no +virq paths", async () => {
    if (lab === undefined) throw new Error("no shared lab");
    const g = await lab.createGuest({ name: "hv-stock-probe", kernel: requireEnv("FASTSUSPEND_GUEST_KERNEL_PATCHED") });
    const caps = JSON.parse(await lab.mustExec(`${CLI} info ${g.domid} --json`)) as { hvNotify: { available: boolean; detail: string }; paths: string[] };
    expect(caps.hvNotify).toEqual({ available: false, detail: "ENOSYS" });
    expect(caps.paths.filter((p) => p.endsWith("+virq"))).toEqual([]);
    expect(caps.paths).toContain("evtchn+evtchn"); // the guest side still works on stock Xen
  }, 4 * MINUTE);
});

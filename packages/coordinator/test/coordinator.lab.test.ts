// The coordinator and CLI on real Xen, in the shared nested lab (scripts/test.mjs boots it; these
// run through jest.lab.config.cjs only). Everything runs inside dom0 through the built CLI at
// /fastsuspend. Guests: Debian's stock 6.1 kernel (no suspend channel) and, when
// FASTSUSPEND_GUEST_KERNEL_PATCHED names one, the patched kernel that advertises a channel.
import { attachSharedLab, type Guest, type Lab } from "@fastsuspend/lab";

const CLI = "node /fastsuspend/packages/cli/dist/main.js";
const MINUTE = 60_000;

interface BenchJson {
  paths: { name: string; n: number; ok: number; failed: number; errors: string[]; totalMs: { median: number } }[];
}

/** `xl list` state flags for one domain ("r", "b", "p", "s", "c", "d" or "-" each). */
async function xlState(lab: Lab, domid: number): Promise<string> {
  const out = await lab.mustExec(`xl list ${domid} | awk 'NR==2{print $5}'`);
  return out.trim();
}

function expectRunning(state: string): void {
  // Positions: r b p s c d. Not paused, not shut down (suspended), not crashed, not dying.
  expect(state).toMatch(/^[r-][b-]-{4}$/);
}

describe("coordinator on real Xen", () => {
  let lab: Lab;
  const guests: { label: string; guest: Guest; patched: boolean }[] = [];

  beforeAll(async () => {
    lab = await attachSharedLab();
    const stock = process.env.FASTSUSPEND_GUEST_KERNEL_STOCK;
    const patched = process.env.FASTSUSPEND_GUEST_KERNEL_PATCHED;
    await lab.exec("xl destroy coord-stock 2>/dev/null; xl destroy coord-patched 2>/dev/null; true");
    guests.push({ label: "stock", patched: false, guest: await lab.createGuest({ name: "coord-stock", ...(stock ? { kernel: stock } : {}) }) });
    if (patched) guests.push({ label: "patched", patched: true, guest: await lab.createGuest({ name: "coord-patched", kernel: patched }) });
  }, 6 * MINUTE);

  afterAll(async () => {
    await lab.exec("xl destroy coord-stock 2>/dev/null; xl destroy coord-patched 2>/dev/null; true");
    lab.disconnect();
  });

  test("info names the available paths; the patched guest offers its suspend channel; a domain name does as its id", async () => {
    for (const g of guests) {
      const out = await lab.mustExec(`${CLI} info ${g.guest.domid} --json`);
      const caps = JSON.parse(out) as { domid: number; paths: string[]; guestChannel: { status: string } };
      // As xl takes them: the name is looked up in xenstore (issue 16 item 4).
      const byName = JSON.parse(await lab.mustExec(`${CLI} info ${g.guest.name} --json`)) as typeof caps;
      expect({ domid: byName.domid, paths: byName.paths }).toEqual({ domid: g.guest.domid, paths: caps.paths });
      expect(caps.paths).toContain("xenstore+watch");
      expect(caps.paths).toContain("xenstore+evtchn");
      if (g.patched) {
        expect(caps.guestChannel.status).toBe("ok");
        expect(caps.paths[0]).toMatch(/^evtchn\+/);
      } else {
        expect(caps.guestChannel.status).toBe("absent");
      }
    }
  });

  test("every available path completes its cycles with zero failures (50 per path on the patched guest, 25 on the stock one)", async () => {
    for (const g of guests) {
      const file = `/tmp/coord-bench-${g.label}.json`;
      // The stock kernel lacks kernel/0004: its cancelled resume grows geometrically with the number
      // of suspends (upstream's periodic-tick bug, docs/guest-slowdown.md), and four paths of 100
      // cycles on one stock guest outran 12 minutes under TCG. This test is about every path
      // working; the stock guest's slowdown is measured in docs/guest-slowdown.md.
      // 50 on the patched guest (was 100): CI's 90 minutes hold this file on both stacks.
      const cycles = g.patched ? 50 : 25;
      const r = await lab.exec(`${CLI} bench-run ${g.guest.domid} --cycles ${cycles} --interval 20 --xl-save 0 --timeout 10000 --output ${file}`, { timeoutMs: 12 * MINUTE });
      const json = JSON.parse(await lab.mustExec(`cat ${file}`)) as BenchJson;
      const summary = json.paths.map((p) => `${p.name}: ${p.ok}/${p.n} ${p.errors.join("; ")}`).join("\n");
      expect({ code: r.code, summary }).toEqual({ code: 0, summary: json.paths.map((p) => `${p.name}: ${p.n}/${p.n} `).join("\n") });
      expect(json.paths.map((p) => p.name)).toContain("xenstore+watch");
      for (const p of json.paths) expect([p.name, p.ok, p.failed]).toEqual([p.name, cycles, 0]);
      // Afterwards the guest runs and nothing of ours is left behind.
      expectRunning(await xlState(lab, g.guest.domid));
      expect((await lab.exec(`test -e /var/run/xen/suspend-evtchn-${g.guest.domid}.lock`)).code).not.toBe(0);
    }
  }, 30 * MINUTE);

  test("a guest that never answers: timeout, request withdrawn, still running after unpause and never suspends later", async () => {
    const d = guests[0]?.guest.domid ?? -1;
    await lab.mustExec(`xl pause ${d}`);
    let r;
    try {
      // A paused guest cannot ack control/shutdown: the coordinator must withdraw the request.
      r = await lab.exec(`${CLI} suspend ${d} --path xenstore+watch --timeout 2000`, { timeoutMs: MINUTE });
    } finally {
      await lab.mustExec(`xl unpause ${d}`);
    }
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`domain ${d} did not suspend within 2000 ms via xenstore\\+watch \\(request withdrawn\\); it is left running`));
    expect((await lab.mustExec(`xenstore-read /local/domain/${d}/control/shutdown`)).trim()).toBe("");
    // Give the unpaused guest time to see the (withdrawn) request: it must not suspend.
    await lab.mustExec("sleep 5");
    expectRunning(await xlState(lab, d));
    // And it still suspends when asked properly.
    expect((await lab.exec(`${CLI} checkpoint ${d} --interval 0 --count 3`, { timeoutMs: 2 * MINUTE })).code).toBe(0);
  }, 5 * MINUTE);

  test("SIGINT in the middle of a checkpoint loop leaves the guest running and releases everything", async () => {
    for (const g of guests) {
      const d = g.guest.domid;
      const out = await lab.mustExec(
        // Signal only once the loop runs (Node's start under a loaded TCG host can take seconds).
        `rm -f /tmp/coord-ck.log; ${CLI} checkpoint ${d} --interval 0 --count 100000 >/tmp/coord-ck.log 2>&1 & pid=$!; ` +
          `i=0; until grep -q 'checkpoint loop on domain' /tmp/coord-ck.log; do i=$((i+1)); [ $i -gt 1200 ] && break; sleep 0.1; done; ` +
          `sleep 2; kill -INT $pid; wait $pid; echo "exit=$?"; cat /tmp/coord-ck.log`,
        { timeoutMs: 2 * MINUTE },
      );
      expect(out).toMatch(/exit=130/);
      expect(out).toMatch(new RegExp(`SIGINT: checkpoint loop stopped, domain ${d} left running`));
      expectRunning(await xlState(lab, d));
      expect((await lab.exec(`test -e /var/run/xen/suspend-evtchn-${d}.lock`)).code).not.toBe(0);
    }
  }, 5 * MINUTE);

  test("after xl save -c of the patched guest (libxl leaves its channel subscribed), the *+watch paths still see the suspend", async () => {
    const g = guests.find((x) => x.patched);
    if (g === undefined) throw new Error("FASTSUSPEND_GUEST_KERNEL_PATCHED is not set: this test needs the patched guest");
    const d = g.guest.domid;
    const save = await lab.exec(`xl save -c ${d} /dev/null`, { timeoutMs: 3 * MINUTE });
    expect(save.code).toBe(0);
    // libxl's xc_suspend_evtchn_release never unsubscribes: VIRQ_DOM_EXC (and so @releaseDomain)
    // stays silent for this guest's suspends until someone resets the subscription.
    for (const path of ["xenstore+watch", "evtchn+watch"]) {
      const r = await lab.exec(`${CLI} checkpoint ${d} --path ${path} --interval 0 --count 5 --timeout 5000`, { timeoutMs: 3 * MINUTE });
      console.log(`after xl save -c, ${path}: exit ${r.code} ${r.stdout.trim()} ${r.stderr.trim()}`);
      expect(r.code).toBe(0);
      expectRunning(await xlState(lab, d));
    }
  }, 10 * MINUTE);

  test("after the runs, @releaseDomain fires again for the guest's suspends (subscription reset)", async () => {
    for (const g of guests) {
      const d = g.guest.domid;
      // A plain xenstore watcher (not us) must see the suspend: the registration fire + at least one.
      const script = [
        "rm -f /tmp/coord-rd.log",
        "xenstore-watch -n 3 @releaseDomain >/tmp/coord-rd.log 2>&1 & w=$!",
        "sleep 1",
        `xenstore-write /local/domain/${d}/control/shutdown suspend`,
        `i=0; until xl list ${d} | awk 'NR==2{print $5}' | grep -q s; do i=$((i+1)); [ $i -gt 200 ] && break; sleep 0.1; done`,
        "sleep 1",
        "kill $w 2>/dev/null",
        "echo lines=$(wc -l </tmp/coord-rd.log)",
        `${CLI} resume ${d}`,
      ].join("; ");
      const out = await lab.mustExec(script, { timeoutMs: 2 * MINUTE });
      const lines = Number(/lines=(\d+)/.exec(out)?.[1] ?? "0");
      expect(lines).toBeGreaterThanOrEqual(2);
      expectRunning(await xlState(lab, d));
    }
  }, 5 * MINUTE);
});

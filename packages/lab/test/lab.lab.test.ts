// The lab itself, on real Xen: the shared lab (oxenstored) and a second lab of our own
// (cxenstored), which also shows two labs run side by side and that `down` leaves no QEMU.
import { readdirSync, readFileSync } from "node:fs";
import { Lab, attachSharedLab } from "../src";
import { stackFacts, stackFromEnv } from "../src/stack-facts";

// The stack npm test booted (FASTSUSPEND_STACK), and what its Xen reports.
const facts = stackFacts(stackFromEnv());
const [xenMajor = "", xenMinor = ""] = facts.xen.split(".");

function qemuPidsFor(runDir: string): number[] {
  return readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        const cmd = readFileSync(`/proc/${d}/cmdline`, "utf8");
        return cmd.includes("qemu-system") && cmd.includes(`${runDir}/`); // the slash: "x-cx" must not match "x-cxs"
      } catch {
        return false;
      }
    })
    .map(Number);
}

describe("the shared lab (oxenstored)", () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await attachSharedLab();
  });
  afterAll(async () => {
    await lab.exec("xl destroy lab-g1 2>/dev/null; xl destroy lab-big 2>/dev/null; true");
    lab.disconnect();
  });

  test(`Xen reports version ${facts.xen}`, async () => {
    expect(lab.stack).toBe(facts.stack); // the lab npm test booted is the stack it names
    const info = await lab.mustExec("xl info");
    expect(info).toMatch(new RegExp(`xen_major\\s+:\\s+${xenMajor}\\n`));
    expect(info).toMatch(new RegExp(`xen_minor\\s+:\\s+${xenMinor}\\n`));
  });

  test("oxenstored is up and answers", async () => {
    expect((await lab.mustExec("cat /var/run/xenstored.flavour")).trim()).toBe("oxenstored");
    expect(await lab.mustExec("ps")).toMatch(/oxenstored/);
    expect((await lab.mustExec("xenstore-read /local/domain/0/name")).trim()).toBe("Domain-0");
  });

  test("a command's exit code, stdout and stderr come back; a timeout kills it", async () => {
    const r = await lab.exec("echo out; echo err >&2; exit 3");
    expect(r).toMatchObject({ code: 3, stdout: "out\n", stderr: "err\n", timedOut: false });
    const slow = await lab.exec("sleep 30", { timeoutMs: 500 });
    expect(slow.timedOut).toBe(true);
  });

  test("a PV guest boots to its init, and xl save -c checkpoints it while it keeps running", async () => {
    const g = await lab.createGuest({ name: "lab-g1" });
    expect(g.domid).toBeGreaterThan(0);
    const list = await lab.mustExec("xl list lab-g1");
    expect(list).toMatch(/lab-g1\s+\d+\s+128\s+1/);
    const save = await lab.exec("xl save -c lab-g1 /dev/null", { timeoutMs: 180_000 });
    expect(save.code).toBe(0);
    // Still the same domain, not shut down, and its vCPU keeps accumulating time.
    const t1 = Number((await lab.mustExec("xl list lab-g1 | awk 'NR==2{print $6}'")).trim());
    expect((await lab.mustExec("xl domid lab-g1")).trim()).toBe(String(g.domid));
    const state = (await lab.mustExec("xl list lab-g1 | awk 'NR==2{print $5}'")).trim();
    expect(state).not.toMatch(/[sc]/);
    await lab.mustExec("sleep 2");
    const t2 = Number((await lab.mustExec("xl list lab-g1 | awk 'NR==2{print $6}'")).trim());
    expect(t2).toBeGreaterThanOrEqual(t1);
    await lab.destroyGuest("lab-g1");
    expect((await lab.exec("xl domid lab-g1")).code).not.toBe(0);
  });

  test("an xl create that fails says what held Xen's memory, and leaves no domain behind", async () => {
    // More memory than the lab has (2 GB): libxl cannot build it.
    const e = await lab.createGuest({ name: "lab-big", memoryMb: 4096 }).then(() => undefined, (err: unknown) => err);
    expect(e).toBeInstanceOf(Error);
    const msg = (e as Error).message;
    expect(msg.split("\n")[0]).toMatch(/^dom0: `xl create \/lab\/guests\/lab-big\.cfg` exited \d+$/);
    expect(msg).toMatch(/Xen free \d+ MB; domains: Domain-0\(0, \d+ MB, [-rbpscd]{6}\)/);
    expect(msg).toMatch(/dom0 available \d+ MB; dom0 rootfs \d+ MB used$/);
    expect((await lab.exec("xl domid lab-big")).code).not.toBe(0);
  });
});

describe("a second lab with cxenstored", () => {
  test("boots beside the shared one, runs a guest, and leaves no QEMU after down", async () => {
    const lab = await Lab.up({ name: `${process.env.FASTSUSPEND_LAB ?? "dev"}-cx`, stack: facts.stack, xenstored: "cxenstored", guestKernel: process.env.FASTSUSPEND_GUEST_KERNEL_STOCK });
    try {
      expect(qemuPidsFor(lab.runDir)).toHaveLength(1);
      expect((await lab.mustExec("cat /var/run/xenstored.flavour")).trim()).toBe("cxenstored");
      expect(await lab.mustExec("ps")).toMatch(/ xenstored --pid-file/);
      await lab.createGuest({ name: "cx-g1" });
      expect(await lab.mustExec("xenstore-read /local/domain/$(xl domid cx-g1)/name")).toBe("cx-g1\n");
    } finally {
      await lab.down();
    }
    expect(qemuPidsFor(lab.runDir)).toHaveLength(0);
    expect(lab.isRunning()).toBe(false);
  });
});

// What a guest may do in xenstore, and what dom0 sees when a guest goes away, on oxenstored and
// cxenstored, with our client in dom0. The guest side is the lab guest's own init: it runs
// packages/lab/assets/guest-xsprobe.c over its xenbus device at boot and prints the answers.
import { type Lab, attachSharedLab } from "@fastsuspend/lab";

const flavours = [
  { flavour: "oxenstored", env: "FASTSUSPEND_LAB" },
  { flavour: "cxenstored", env: "FASTSUSPEND_LAB_CX" },
] as const;

/** Runs a snippet against our client in dom0; it prints one JSON line. */
const client = (body: string): string[] => [
  "node", "-e",
  `const { XenstoreClient } = require("/fastsuspend/node_modules/@fastsuspend/xenstore");
   (async () => { const xs = await XenstoreClient.connect(); try { ${body} } finally { await xs.close(); } })()
     .catch((e) => { console.log(JSON.stringify({ fatal: String(e && (e.errno || e.code) || e) })); process.exit(1); });`,
];

describe.each(flavours)("a guest's xenstore access on real $flavour", ({ flavour, env }) => {
  let lab: Lab;
  let domid: number;
  const name = `xsa-${flavour}`;
  beforeAll(async () => {
    lab = await attachSharedLab(env);
    await lab.exec(`xl destroy ${name} 2>/dev/null; true`);
    domid = (await lab.createGuest({ name })).domid;
  });
  afterAll(async () => {
    await lab.exec(`xl destroy ${name} 2>/dev/null; true`);
    lab.disconnect();
  });

  test("xenstored lets the guest write below its home and refuses it dom0's nodes", async () => {
    const line = await lab.mustExec(`grep -a FASTSUSPEND-GUEST-XSPROBE /var/log/xen/console/guest-${name}.log`);
    expect(line.trim().split("\n")[0]?.trim()).toBe("FASTSUSPEND-GUEST-XSPROBE own-write=OK dom0-write=EACCES dom0-read=EACCES");
    // The node the guest created is the guest's (owner first in the list), with its value.
    const out = await lab.mustExec(client(
      `const p = "/local/domain/${String(domid)}/data/xsprobe";
       console.log(JSON.stringify({ value: (await xs.read(p)).toString(), perms: await xs.getPermissions(p) }));`,
    ));
    const r = JSON.parse(out.trim().split("\n").pop() ?? "{}") as { value: string; perms: { domid: number; access: string }[] };
    expect(r.value).toBe("guest");
    expect(r.perms[0]).toEqual({ domid, access: "none" });
    // And nothing was written where it was refused.
    expect((await lab.exec("xenstore-exists /local/domain/0/xsprobe")).code).not.toBe(0);
  });

  test("@releaseDomain fires when the guest is destroyed, and its home path goes away", async () => {
    // Watch from our client, destroy from xl, bounded wait for a fire after the registration one.
    const out = await lab.mustExec(client(
      `const w = await xs.watch("@releaseDomain", { initialFire: "swallow" });
       const { spawnSync } = require("node:child_process");
       const destroyed = spawnSync("xl", ["destroy", "${String(domid)}"]).status;
       const t0 = Date.now();
       const fire = await Promise.race([w.next(), new Promise((r) => setTimeout(() => r("timeout"), 30000))]);
       const ms = Date.now() - t0;
       await w.close();
       let home = "present";
       try { await xs.read("/local/domain/${String(domid)}"); } catch (e) { home = String(e.errno); } // XenstoreError keeps the errno name
       console.log(JSON.stringify({ destroyed, fired: fire !== "timeout", path: fire === "timeout" ? null : fire.value.path, ms, home }));`,
    ), { timeoutMs: 120_000 });
    const r = JSON.parse(out.trim().split("\n").pop() ?? "{}") as { destroyed: number; fired: boolean; path: string; home: string };
    expect(r).toMatchObject({ destroyed: 0, fired: true, path: "@releaseDomain", home: "ENOENT" });
    expect(await lab.mustExec(`xl list | awk '$1=="${name}"'`)).toBe("");
  });
});

// The xenstore client's contract suite over the kernel's /dev/xen/xenbus device in dom0, against
// real oxenstored and cxenstored. Known failure: pipelined write-then-read of one node gives ENOENT.
import { type Lab, attachSharedLab, runJestInDom0 } from "@fastsuspend/lab";

const flavours = [
  { flavour: "oxenstored", env: "FASTSUSPEND_LAB" },
  { flavour: "cxenstored", env: "FASTSUSPEND_LAB_CX" },
] as const;

describe.each(flavours)("xenstore client on real $flavour", ({ flavour, env }) => {
  let lab: Lab;
  let domid: number;
  beforeAll(async () => {
    lab = await attachSharedLab(env);
    domid = (await lab.createGuest({ name: `xs-${flavour}` })).domid;
  });
  afterAll(async () => {
    await lab.exec(`xl destroy xs-${flavour}`);
    lab.disconnect();
  });

  test.each([["xenbus device", "/dev/xen/xenbus"]])("the contract suite passes over the %s", async (transport, path) => {
    const r = await runJestInDom0(lab, {
      pkg: "xenstore", testFile: "src/real.contract.test.ts", name: `xenstore-${flavour}-${transport.replace(" ", "-")}`,
      env: { XENSTORED_PATH: path, FASTSUSPEND_GUEST_DOMID: String(domid), FASTSUSPEND_XENSTORED: flavour },
    });
    const failed = r.tests.filter((t) => t.status === "failed");
    expect(failed.map((t) => `${t.title}: ${t.failureMessages.join("\n").slice(0, 600)}`)).toEqual([]);
    expect(r.numPassedTests).toBeGreaterThanOrEqual(20);
  });
});

// Shared by the xenstore lab test files: on each lab (oxenstored, cxenstored) create a guest, run
// the client's contract suite by Jest inside dom0 over one transport, and optionally the latency
// benchmark. Not a test file itself (jest.lab.config.cjs matches *.lab.test.ts only).
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Lab, attachSharedLab, runJestInDom0 } from "@fastsuspend/lab";

const flavours = [
  { flavour: "oxenstored", env: "FASTSUSPEND_LAB" },
  { flavour: "cxenstored", env: "FASTSUSPEND_LAB_CX" },
] as const;

export function describeXenstoreOnLabs(transport: string, path: string, opts: { latency: boolean }): void {
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

    test(`the contract suite passes over the ${transport}`, async () => {
      const r = await runJestInDom0(lab, {
        pkg: "xenstore", testFile: "src/real.contract.test.ts", name: `xenstore-${flavour}-${transport.replace(" ", "-")}`,
        env: { XENSTORED_PATH: path, FASTSUSPEND_GUEST_DOMID: String(domid), FASTSUSPEND_XENSTORED: flavour },
      });
      const failed = r.tests.filter((t) => t.status === "failed");
      expect(failed.map((t) => `${t.title}: ${t.failureMessages.join("\n").slice(0, 600)}`)).toEqual([]);
      expect(r.numPassedTests).toBeGreaterThanOrEqual(20);
    });

    if (opts.latency) {
      test("read and watch-fire latency (benchmark, printed, not asserted beyond sanity)", async () => {
        const out = await lab.mustExec(["node", "/fastsuspend/packages/bench/dist/dom0/xenstore-latency.js", "--iterations", "200"], { timeoutMs: 300_000 });
        const json = JSON.parse(out.slice(out.indexOf("{"))) as Record<string, unknown>;
        mkdirSync("results", { recursive: true });
        writeFileSync(join("results", `xenstore-latency-${flavour}.json`), JSON.stringify(json, null, 2));
        console.log(`xenstore latency on ${flavour}:`, JSON.stringify(json));
        expect(Object.keys(json).length).toBeGreaterThan(0);
      });
    }
  });
}

// The lab files' order does not depend on Jest's timing cache or on file sizes.
import { join } from "node:path";

// eslint-disable-next-line @typescript-eslint/no-require-imports
const LabSequencer = require("../lab-sequencer.cjs") as new () => { sort(tests: { path: string }[]): { path: string }[] };
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { order, verified } = require("../lab-tests.json") as { order: string[]; verified: string[] };

describe("lab-sequencer", () => {
  test("puts the verified lab files in lab-tests.json's order whatever order they come in, unlisted files last", () => {
    expect([...order].sort()).toEqual([...verified].sort());
    const root = "/somewhere/clone";
    const given = [...order].reverse().map((f) => ({ path: join(root, f) }));
    given.splice(3, 0, { path: join(root, "packages/lab/test/blackout.lab.test.ts") });
    const sorted = new LabSequencer().sort(given).map((t) => t.path.slice(root.length + 1));
    expect(sorted).toEqual([...order, "packages/lab/test/blackout.lab.test.ts"]);
  });
});

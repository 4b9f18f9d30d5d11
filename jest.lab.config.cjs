// Integration tests on the nested Xen lab: real hypervisor, xenstored, libxenctrl and guest kernels.
// They attach to the lab that scripts/test.mjs booted (FASTSUSPEND_LAB names it); one at a time,
// since they share that lab.
const base = require("./jest.base.cjs");
module.exports = {
  ...base,
  rootDir: __dirname,
  testMatch: ["<rootDir>/packages/*/test/**/*.lab.test.ts"],
  testPathIgnorePatterns: ["/node_modules/", "/dist/"],
  testTimeout: 600_000,
  // One fixed order on every machine (they share the lab's dom0): scripts/lab-sequencer.cjs.
  testSequencer: "<rootDir>/scripts/lab-sequencer.cjs",
};

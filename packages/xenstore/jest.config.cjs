// The real-xenstored contract runs only in a dom0 (/dev/xen) or when FASTSUSPEND_REQUIRE_XEN=1
// insists; elsewhere it is left out, so it is never counted as passing without having run.
const fs = require("node:fs");
const base = require("../../jest.base.cjs");
const runReal = fs.existsSync("/dev/xen") || process.env.FASTSUSPEND_REQUIRE_XEN === "1";
module.exports = {
  ...base,
  testPathIgnorePatterns: [...base.testPathIgnorePatterns, ...(runReal ? [] : ["real\\.contract\\.test\\.ts$"])],
};

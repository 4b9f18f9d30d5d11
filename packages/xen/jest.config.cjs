// The real-Xen contract runs only where it can: in a dom0 (/dev/xen/privcmd), or when
// FASTSUSPEND_REQUIRE_XEN=1 insists (then it fails loudly if Xen is absent). Elsewhere it is
// ignored, so it is never counted as passing without having run.
const fs = require("node:fs");

const base = require("../../jest.base.cjs");
const runReal = fs.existsSync("/dev/xen/privcmd") || process.env.FASTSUSPEND_REQUIRE_XEN === "1";

module.exports = {
  ...base,
  testPathIgnorePatterns: [...base.testPathIgnorePatterns, ...(runReal ? [] : ["real\\.contract\\.test\\.ts$"])],
};

// Unit tests only: `*.lab.test.ts` needs the nested Xen lab and runs through jest.lab.config.cjs.
const base = require("../../jest.base.cjs");
module.exports = {
  ...base,
  testPathIgnorePatterns: ["/node_modules/", "/dist/", "/build/", "\\.lab\\.test\\.ts$"],
};

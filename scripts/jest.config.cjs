// The repo scripts' own unit tests (scripts/test): npm test's plumbing.
module.exports = { ...require("../jest.base.cjs"), displayName: "scripts" };

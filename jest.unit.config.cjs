// Every package's unit tests (fakes, pure logic) in one run on the host.
module.exports = { projects: ["<rootDir>/packages/*/jest.config.cjs", "<rootDir>/scripts/jest.config.cjs"] };

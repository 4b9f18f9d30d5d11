// Shared Jest settings: swc transpiles (type checking stays in `tsc --noEmit`).
// `*.lab.test.ts` files need the nested Xen lab: they run only through jest.lab.config.cjs.
module.exports = {
  testEnvironment: "node",
  transform: { "^.+\\.ts$": ["@swc/jest"] },
  testMatch: ["<rootDir>/src/**/*.test.ts", "<rootDir>/test/**/*.test.ts"],
  testPathIgnorePatterns: ["/node_modules/", "/dist/", "/build/", "\\.lab\\.test\\.ts$"],
  moduleFileExtensions: ["ts", "js", "json", "node"],
};

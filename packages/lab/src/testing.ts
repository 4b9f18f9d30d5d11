// Helpers for integration tests that run on the lab booted by scripts/test.mjs.
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { LabError } from "./errors";
import { Lab } from "./lab";

/** Attaches to the shared lab named by FASTSUSPEND_LAB; a clear error when there is none. */
export async function attachSharedLab(envVar = "FASTSUSPEND_LAB"): Promise<Lab> {
  const name = process.env[envVar];
  if (!name) {
    throw new LabError(`no lab to run on: ${envVar} is not set`, "run `npm test`, or `fastsuspend-lab up --name dev` and FASTSUSPEND_LAB=dev npx jest -c jest.lab.config.cjs");
  }
  return Lab.attach(name);
}

export interface Dom0JestResult {
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests: number;
  tests: { title: string; status: string; failureMessages: string[] }[];
  stdout: string;
  stderr: string;
}

interface JestJson {
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests: number;
  testResults: { assertionResults: { fullName: string; status: string; failureMessages: string[] }[] }[];
}

/**
 * Runs Jest inside dom0 on one package's test file, against real Xen. The JSON report lands in the
 * lab's share (results/NAME.json) where scripts/test.mjs counts it into the run's totals.
 */
export async function runJestInDom0(
  lab: Lab,
  opts: { pkg: string; testFile: string; name: string; env?: Record<string, string>; timeoutMs?: number },
): Promise<Dom0JestResult> {
  const hostResults = join(lab.runDir, "share", "results");
  mkdirSync(hostResults, { recursive: true });
  const out = `/lab/results/${opts.name}.json`;
  const r = await lab.exec(
    // Everything is 50-100x slower under TCG: Jest's 5 s default per test is far too short.
    ["node", "/fastsuspend/node_modules/jest/bin/jest.js", "--ci", "--runInBand", "--testTimeout=120000", "--json", `--outputFile=${out}`, opts.testFile],
    { cwd: `/fastsuspend/packages/${opts.pkg}`, env: { FASTSUSPEND_REQUIRE_XEN: "1", ...opts.env }, timeoutMs: opts.timeoutMs ?? 600_000 },
  );
  const file = join(hostResults, `${opts.name}.json`);
  if (!existsSync(file)) throw new LabError(`Jest in dom0 wrote no report (exit ${r.code})`, "see its output", `${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`);
  const j = JSON.parse(readFileSync(file, "utf8")) as JestJson;
  return {
    numPassedTests: j.numPassedTests, numFailedTests: j.numFailedTests, numPendingTests: j.numPendingTests,
    tests: j.testResults.flatMap((t) => t.assertionResults.map((a) => ({ title: a.fullName, status: a.status, failureMessages: a.failureMessages }))),
    stdout: r.stdout, stderr: r.stderr,
  };
}

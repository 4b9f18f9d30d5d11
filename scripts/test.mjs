#!/usr/bin/env node
// `npm test`: everything from a fresh clone. Bootstrap, build, lint, unit tests on the host, then
// build the lab's artefacts (cached outside the repo), boot real Xen nested under QEMU and run the
// integration tests there. Prints each stage's time and ends with `N passed, N failed`.
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bootstrap } from "./bootstrap.mjs";
import { killChildren, labPlan, labStackArgs, log, mustSh, sh, stage, stages, tally } from "./lib.mjs";
import { buildLabInputs } from "./lab-inputs.mjs";

// The Debian releases of the labs, their guest kernels and patched hypervisor, and what the lab
// tests expect: bookworm (Xen 4.17 + Linux 6.1) with every verified lab file, then trixie (Xen 4.20
// + Linux 6.12) with the core suites; FASTSUSPEND_STACK=bookworm|trixie runs one stack, all files.
let plan;
try {
  plan = labPlan();
} catch (e) {
  log(e.message);
  process.exit(2);
}
/** Said in the lab stages' names; nothing on bookworm, whose names are the ones from before stacks. */
const stackLabel = (stack) => (stack === "bookworm" ? "" : `stack ${stack}; `);

const results = join(process.cwd(), "results");
rmSync(results, { recursive: true, force: true });
mkdirSync(results, { recursive: true });
const baseLabName = process.env.FASTSUSPEND_LAB ?? `test-${process.pid}`;
/** The two labs of a stack: oxenstored (patched Xen) and cxenstored (Debian's); the first stack keeps the names from before stacks. */
const labNames = (i, stack) => {
  const ox = i === 0 ? baseLabName : `${baseLabName}-${stack}`;
  return { ox, cx: `${ox}-cxs` };
};
/** Where the i-th stack's lab test results go. */
const labResults = (i) => join(results, i === 0 ? "lab.json" : `lab-${plan[i].stack}.json`);
const lab = "packages/lab/dist/cli.js";
/** The labs up now (taken down, consoles kept, by downLabs), and every lab this run booted (for dom0's results). */
let labsUp = [];
const labsBooted = [];

/**
 * The artefacts of stacks after the first, built in the background while the stack before runs its
 * lab tests (buildAhead): from a cold cache they are two guest kernels and a hypervisor (~10 min on
 * 2 cores), which would otherwise add to CI's time; a TCG lab test run keeps about one core busy.
 */
const ahead = new Map();

/** Set by SIGINT/SIGTERM: no further stack or lab is started. */
let stopping = false;
let downing = Promise.resolve();

/** Takes the labs up now down, one call at a time (the signal handler and a stack's end may race). */
function downLabs() {
  downing = downing.then(downLabsNow);
  return downing;
}

async function downLabsNow() {
  const names = labsUp;
  labsUp = [];
  for (const n of names) {
    // What a failed lab test needs afterwards and the lab takes with it: Xen's log and the tail of
    // every guest console (a guest that crashed is destroyed by its test's cleanup).
    const r = await sh("node", [lab, "consoles", "--name", n], { capture: true });
    if (r.code === 0) writeFileSync(join(results, `${n}-consoles.txt`), r.out);
    await sh("node", [lab, "down", "--name", n]);
  }
}
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.once(sig, () => {
    stopping = true;
    killChildren();
    // Every lab this run booted (`lab down` of a stopped one is harmless): one booting when the
    // signal came is not yet in labsUp.
    labsUp = [...new Set([...labsUp, ...labsBooted])];
    void downLabs().finally(() => process.exit(130));
  });
}

/** The lab test files to run: those that have passed on the lab (scripts/lab-tests.json), the core suites, or all. */
function labTestFiles(which) {
  const chosen = process.env.FASTSUSPEND_LAB_TESTS ?? "";
  if (chosen === "all") return [];
  // A comma-separated list of lab test files runs just those (to reproduce one suite's failure).
  if (chosen !== "") {
    const files = chosen.split(",").map((f) => f.trim()).filter((f) => f !== "");
    const missing = files.filter((f) => !existsSync(f));
    if (missing.length > 0) throw new Error(`FASTSUSPEND_LAB_TESTS names no such file: ${missing.join(", ")}`);
    log(`lab test files (FASTSUSPEND_LAB_TESTS): ${files.join(", ")}`);
    return files;
  }
  const listed = JSON.parse(readFileSync("scripts/lab-tests.json", "utf8"))[which];
  log(`lab test files (${which}): ${listed.join(", ")} (FASTSUSPEND_LAB_TESTS=all runs every one)`);
  return listed;
}

/** Jest's exit code; a run that failed without writing its results (no tests found, a crash) is a broken stage. */
async function jest(config, out, extra = [], env = {}) {
  const code = await sh("npx", ["jest", "-c", config, "--ci", "--json", `--outputFile=${out}`, ...extra], { env });
  if (code !== 0 && !existsSync(out)) throw new Error(`jest -c ${config} exited ${code} and wrote no results`);
  return code;
}

/** Stages that broke (each counted as one failure: both stacks breaking are two). */
let failedStages = 0;
let lintFailed = false;
try {
  await bootstrap();
  await stage("build (turbo: tsc, node-gyp)", () => mustSh("npx", ["turbo", "run", "build", "--output-logs=errors-only"]));
  // A type or lint error is a failure of the run, but the tests still run and are counted.
  // The packages through turbo; scripts/test, which is no package, by hand.
  await stage("typecheck and lint", async () => {
    await mustSh("npx", ["turbo", "run", "typecheck", "lint", "--output-logs=errors-only", "--continue"]);
    await mustSh("npx", ["tsc", "-p", "scripts"]);
    await mustSh("npx", ["eslint", "scripts/test"]);
  }).catch(() => {
    lintFailed = true;
  });
  await stage("unit tests (host, fakes)", () => jest("jest.unit.config.cjs", join(results, "unit.json")));
  await stage("patch series apply with no fuzz (kernel: and checkpatch --strict)", checkSeries);
} catch (e) {
  failedStages++;
  log(`stopped: ${e.message}`);
}
// One stack after the other (two labs each; four TCG labs at once would starve 2 cores). A stack
// that breaks is counted as a failure and the next one still runs.
for (const [i, { stack, files }] of (failedStages > 0 ? [] : plan).entries()) {
  if (stopping) break;
  try {
    await stackLabTests(stack, files, labNames(i, stack), labResults(i), plan[i + 1]?.stack);
  } catch (e) {
    failedStages++;
    log(`stack ${stack} stopped: ${e.message}`);
  } finally {
    await downLabs();
  }
}

/** Counted like tests: each series' check script is one check that could fail. */
async function checkSeries() {
  let passed = 0;
  let failed = 0;
  // kernel/check.sh once per base: 6.1 (bookworm, kernel/) and 6.12 (trixie, kernel/6.12/).
  const checks = [["kernel/check.sh"], ["kernel/check.sh", "--base", "6.12"], ["hypervisor-patches/check.sh"], ["hypervisor-patches/check.sh", "--base", "4.20"]];
  let skipped = 0;
  for (const [script, ...args] of checks) {
    if (!existsSync(script)) continue;
    // The 4.20 hypervisor base is upstream RELEASE-4.20.4 from a Xen git clone
    // (FASTSUSPEND_XEN_GIT, cached once extracted): Debian trixie's xen source package is not
    // served here. Where neither exists the check cannot run: counted as skipped, not passed.
    if (script.startsWith("hypervisor-patches/") && args.includes("4.20") && (await sh("bash", ["hypervisor-patches/build.sh", "--base", "4.20", "--source-only"])) !== 0) {
      log("hypervisor series 4.20: no Xen 4.20.4 tree on this machine (set FASTSUSPEND_XEN_GIT to a Xen clone): check skipped");
      skipped++;
      continue;
    }
    if ((await sh("bash", [script, ...args])) === 0) passed++;
    else failed++;
  }
  writeFileSync(join(results, "series.json"), JSON.stringify({ numPassedTests: passed, numFailedTests: failed, numPendingTests: skipped }));
}

/** Starts building `stack`'s artefacts in the background (see `ahead`). */
function buildAhead(stack) {
  const file = join(results, `artefacts-${stack}.log`);
  const fd = openSync(file, "w");
  const t0 = Date.now();
  log(`building ${stack}'s lab artefacts in the background, at nice 19 (progress: ${file})`);
  const built = buildLabInputs(stack, { background: { output: fd } }).then(
    (inputs) => {
      log(`${stack}'s lab artefacts built in the background in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
      return { inputs };
    },
    (error) => ({ error, file }),
  );
  ahead.set(stack, built.finally(() => closeSync(fd)));
}

/** A stack's artefacts: those built ahead, or (none, or that build failed) built now. */
async function labInputs(stack) {
  const early = await ahead.get(stack);
  // A signal killed the background build: nothing new is started (its children would outlive us).
  if (stopping) throw new Error("stopped by a signal");
  if (early === undefined) return buildLabInputs(stack);
  if (early.error === undefined) return early.inputs;
  log(`the background build of ${stack}'s artefacts failed (${early.error.message}; ${early.file}): building them again here`);
  return buildLabInputs(stack);
}

/**
 * One stack: its artefacts, its two labs, its lab test files (`files` of scripts/lab-tests.json),
 * results in OUT; the next stack's artefacts are built while its lab tests run.
 */
async function stackLabTests(stack, files, names, out, nextStack) {
  const label = stackLabel(stack);
  const inputs = await stage(`lab artefacts (${label}Xen, dom0, guest kernels, patched hypervisor)`, () => labInputs(stack));
  // The oxenstored lab boots the patched hypervisor, so that the hypervisor series' tests share it
  // (two labs instead of three; each idle TCG lab costs CPU) and everything else also runs on it,
  // while the cxenstored lab stays on Debian's Xen (the stock checks, and the fallback paths).
  // FASTSUSPEND_SHARED_PATCHED_HV=0 keeps both labs on Debian's Xen.
  const patchedHv = process.env.FASTSUSPEND_SHARED_PATCHED_HV !== "0" ? inputs.env.FASTSUSPEND_HYPERVISOR_PATCHED : undefined;
  // The oxenstored lab's CPU model has SVM with nested paging, so its Xen runs PVH guests and the
  // PVH lab tests run beside the PV ones (issue 13). Its QEMU runs TCG single-threaded (the lab's
  // default for an SVM CPU): under multi-threaded TCG, PVH guests of such a lab die with a triple
  // fault within tens of xl remus checkpoints, under single-threaded TCG none did in 1231 xl remus
  // checkpoints and 10000 of our cycles (docs/results.md, session 9). FASTSUSPEND_QEMU_CPU=Nehalem
  // gives the PV-only lab of earlier sessions. The cxenstored lab keeps the default CPU (PV only),
  // on single-threaded TCG: it idles through most files, and idle it took 33% of a core
  // multi-threaded, 15% single-threaded (session 14), next to the busy lab's one.
  const hvmCpu = process.env.FASTSUSPEND_QEMU_CPU ?? "Opteron_G3,+svm,+npt,-rdtscp";
  await stage(`lab up (${label}${names.ox}: oxenstored, ${patchedHv ? "patched" : "Debian"} Xen, CPU ${hvmCpu}; ${names.cx}: cxenstored, Debian Xen)`, async () => {
    const guestKernel = inputs.env.FASTSUSPEND_GUEST_KERNEL_STOCK;
    const gk = guestKernel ? ["--guest-kernel", guestKernel] : [];
    if (stopping) throw new Error("stopped by a signal");
    for (const n of [names.ox, names.cx]) {
      labsUp.push(n);
      labsBooted.push(n);
    }
    await mustSh("node", [lab, "up", ...labStackArgs(stack), "--name", names.ox, "--xenstored", "oxenstored", ...gk, ...(patchedHv ? ["--hypervisor", patchedHv] : [])], { env: { ...inputs.env, FASTSUSPEND_QEMU_CPU: hvmCpu } });
    await mustSh("node", [lab, "up", ...labStackArgs(stack), "--name", names.cx, "--xenstored", "cxenstored", ...gk], { env: { FASTSUSPEND_QEMU_TCG_THREAD: process.env.FASTSUSPEND_QEMU_TCG_THREAD ?? "single", ...inputs.env, FASTSUSPEND_QEMU_CPU: process.env.FASTSUSPEND_QEMU_CPU ?? "Nehalem" } });
  });
  // guest-data on PV and PVH guests on the patched QEMU; on Debian's (asked for with
  // FASTSUSPEND_QEMU_PATCHED=0) PV only: Debian's delivers an injected interrupt a second time,
  // with the guest's interrupts masked, and PVH guests die of it under load (docs/results.md).
  const gdTypes = inputs.env.FASTSUSPEND_QEMU_BINARY || process.env.FASTSUSPEND_QEMU_BINARY ? "pv,pvh" : "pv";
  const labEnv = { FASTSUSPEND_GD_TYPES: process.env.FASTSUSPEND_GD_TYPES ?? gdTypes, FASTSUSPEND_QEMU_CPU: hvmCpu, FASTSUSPEND_LAB: names.ox, FASTSUSPEND_LAB_CX: names.cx, FASTSUSPEND_LAB_STOCK: names.cx, ...(patchedHv ? { FASTSUSPEND_LAB_HV: names.ox } : {}) };
  if (nextStack !== undefined && !stopping) buildAhead(nextStack);
  // The lab tests read the stack from FASTSUSPEND_STACK (packages/lab/src/stack-facts.ts).
  await stage(`lab tests (${label}real Xen ${inputs.facts.xen} under QEMU)`, () =>
    jest("jest.lab.config.cjs", out, ["--runInBand", ...labTestFiles(files)], { ...labEnv, ...inputs.env, FASTSUSPEND_STACK: stack }),
  );
}


const totals = { passed: 0, failed: 0, skipped: 0 };
const files = [join(results, "unit.json"), join(results, "series.json"), ...plan.map((_, i) => labResults(i))];
const runs = join(process.env.FASTSUSPEND_CACHE ?? join(process.env.HOME ?? "/root", ".cache", "fastsuspend"), "runs");
for (const n of labsBooted) {
  const dom0 = join(runs, n, "share", "results");
  if (existsSync(dom0)) for (const f of readdirSync(dom0)) if (f.endsWith(".json")) files.push(join(dom0, f));
}
const failedTests = [];
for (const f of files) {
  const t = tally(f);
  totals.passed += t.passed;
  totals.failed += t.failed;
  totals.skipped += t.skipped;
  failedTests.push(...t.failures);
}
if (failedTests.length > 0) {
  console.log("\nfailed tests:");
  for (const f of failedTests) console.log(`  ${f}`);
}
console.log("\nstage times:");
for (const s of stages) console.log(`  ${s.ok ? "ok  " : "FAIL"} ${s.seconds.toFixed(1).padStart(7)}s  ${s.name}`);
totals.failed += failedStages; // a stage that broke is a failure even if no test ran
if (lintFailed) totals.failed += 1;
if (!Number.isFinite(totals.passed + totals.failed + totals.skipped)) {
  log("the test counts are not numbers: counting as a failure");
  totals.failed = Number.isFinite(totals.failed) ? totals.failed + 1 : 1;
  totals.passed = Number.isFinite(totals.passed) ? totals.passed : 0;
}
console.log(`\n${totals.passed} passed, ${totals.failed} failed${totals.skipped ? `, ${totals.skipped} skipped` : ""}`);
process.exit(totals.failed > 0 ? 1 : 0);

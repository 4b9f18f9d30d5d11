// Builds what the lab boots besides its base artefacts: guest kernels (stock and with kernel/
// applied), the patched hypervisor, for one stack, and the patched QEMU that runs every lab. Each build script caches by content hash
// outside the repo and prints the artefact's path on its last stdout line. Passed to lab tests
// through env.
import { existsSync } from "node:fs";
import { labStackArgs, log, mustSh } from "./lib.mjs";

/**
 * How the builds run: in the foreground, their progress on the terminal; or in the background
 * (npm test builds the next stack's artefacts while a lab test run goes on), at nice 19 with
 * their progress in a file: a TCG lab keeps about one of the two cores busy, the build takes
 * what it leaves. nice alone is not enough: sh() starts each child in a session of its own, and
 * with the kernel's autogroups (sched_autogroup_enabled=1 here) each session gets an equal share
 * of the CPU whatever its tasks' nice values, so the session's autogroup is niced too (session 13:
 * without it, the background build competed as an equal with bookworm's lab tests for 14 minutes).
 */
const BACKGROUND = 'echo 19 > /proc/self/autogroup 2>/dev/null; exec nice -n 19 "$0" "$@"';
export const runner = (background) => (cmd, args, opts = {}) =>
  background === undefined ? mustSh(cmd, args, opts) : mustSh("sh", ["-c", BACKGROUND, cmd, ...args], { ...opts, output: background.output });

async function built(run, script, args) {
  const r = await run("bash", [script, ...args], { capture: true });
  const last = r.out.trim().split("\n").pop();
  if (!last || !existsSync(last)) throw new Error(`${script} ${args.join(" ")} printed no artefact path`);
  return last;
}

/**
 * Builds the lab's artefacts and inputs for `stack`; its facts (packages/lab/src/stack-facts.ts)
 * come back with them. `background: { output }` (a file descriptor) builds niced, progress there.
 */
export async function buildLabInputs(stack = "bookworm", { background } = {}) {
  const run = runner(background);
  // From the lab's build, which has run by now: the scripts' arguments for this stack (none for
  // bookworm, whose commands are the ones from before stacks).
  const { stackFacts } = await import("../packages/lab/dist/stack-facts.js");
  const facts = stackFacts(stack);
  const env = {};
  await run("node", ["packages/lab/dist/cli.js", "build", ...labStackArgs(stack)], { capture: true });
  if (existsSync("kernel/build.sh")) {
    env.FASTSUSPEND_GUEST_KERNEL_STOCK = await built(run, "kernel/build.sh", [...facts.kernelBuildArgs, "--stock"]);
    env.FASTSUSPEND_GUEST_KERNEL_PATCHED = await built(run, "kernel/build.sh", [...facts.kernelBuildArgs]);
  }
  if (existsSync("hypervisor-patches/build.sh")) env.FASTSUSPEND_HYPERVISOR_PATCHED = await built(run, "hypervisor-patches/build.sh", [...facts.hypervisorBuildArgs]);
  // The lab's QEMU with packages/lab/qemu-patches applied (issue 13: Debian's delivers an injected
  // interrupt a second time, with the PVH guest's interrupts masked, and the guest dies), unless
  // one is given (FASTSUSPEND_QEMU_BINARY) or FASTSUSPEND_QEMU_PATCHED=0 asks for Debian's. A build
  // that fails fails the stack: on Debian's QEMU the PVH cases would be left out without a word
  // (session 13's cold run: the build lacked libfdt-dev, and the run went on PV-only).
  if (!process.env.FASTSUSPEND_QEMU_BINARY && process.env.FASTSUSPEND_QEMU_PATCHED !== "0") {
    try {
      env.FASTSUSPEND_QEMU_BINARY = await built(run, "packages/lab/tools/build-qemu.sh", []);
    } catch (e) {
      throw new Error(`the patched QEMU did not build (${e.message}); FASTSUSPEND_QEMU_PATCHED=0 runs the labs on Debian's, PV guests only`);
    }
  }
  for (const [k, v] of Object.entries(env)) log(`${k}=${v}`);
  return { env, facts };
}

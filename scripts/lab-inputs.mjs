// Builds what the lab boots besides its base artefacts: guest kernels (stock and with kernel/
// applied) and the patched hypervisor. Each build script caches by content hash outside the repo
// and prints the artefact's path on its last stdout line. Passed to lab tests through env.
import { existsSync } from "node:fs";
import { log, mustSh } from "./lib.mjs";

async function built(script, args) {
  const r = await mustSh("bash", [script, ...args], { capture: true });
  const last = r.out.trim().split("\n").pop();
  if (!last || !existsSync(last)) throw new Error(`${script} ${args.join(" ")} printed no artefact path`);
  return last;
}

export async function buildLabInputs() {
  const env = {};
  await mustSh("node", ["packages/lab/dist/cli.js", "build"], { capture: true });
  if (existsSync("kernel/build.sh")) {
    env.FASTSUSPEND_GUEST_KERNEL_STOCK = await built("kernel/build.sh", ["--stock"]);
    env.FASTSUSPEND_GUEST_KERNEL_PATCHED = await built("kernel/build.sh", []);
  }
  if (existsSync("hypervisor-patches/build.sh")) env.FASTSUSPEND_HYPERVISOR_PATCHED = await built("hypervisor-patches/build.sh", []);
  for (const [k, v] of Object.entries(env)) log(`${k}=${v}`);
  return { env };
}

#!/usr/bin/env node
// Bootstrap a fresh clone on Debian bookworm: host packages the project builds against or runs
// (QEMU for the lab, libxen-dev for the native addon), then npm ci. Idempotent and quick when done.
import { existsSync, statSync } from "node:fs";
import { log, mustSh, sh, stage } from "./lib.mjs";

// debhelper, lintian and systemd (systemd-analyze): the .deb is built with dpkg-buildpackage and
// checked by packages/daemon/test/deb.test.ts.
const HOST_PACKAGES = ["qemu-system-x86", "libxen-dev", "xz-utils", "build-essential", "python3", "debhelper", "lintian", "systemd"];

export async function bootstrap() {
  await stage("host packages", async () => {
    const r = await sh("dpkg-query", ["-W", "-f=${Package} ${Status}\\n", ...HOST_PACKAGES], { capture: true });
    const installed = new Set(r.out.split("\n").filter((l) => l.endsWith("install ok installed")).map((l) => l.split(" ")[0]));
    const missing = HOST_PACKAGES.filter((p) => !installed.has(p));
    if (missing.length === 0) return;
    if (process.getuid() !== 0) throw new Error(`missing Debian packages ${missing.join(" ")}: run as root, or apt-get install them`);
    log(`installing ${missing.join(" ")}`);
    await mustSh("apt-get", ["update"]);
    await mustSh("apt-get", ["install", "-y", "--no-install-recommends", ...missing], { env: { DEBIAN_FRONTEND: "noninteractive" } });
  });
  await stage("npm ci", async () => {
    const marker = "node_modules/.package-lock.json";
    if (existsSync(marker) && statSync(marker).mtimeMs >= statSync("package-lock.json").mtimeMs) return;
    await mustSh("npm", ["ci", "--no-audit", "--no-fund"]);
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  bootstrap().catch((e) => {
    console.error(`bootstrap: ${e.message}`);
    process.exit(1);
  });
}

#!/usr/bin/env node
// Builds the native addon with node-gyp when the Xen tool headers are present.
//
//   node scripts/install.js             (npm install): build if possible, else explain and exit 0
//   node scripts/install.js --require   (npm run build): same, but exit 1 when it cannot build
//
// Missing headers on Debian as root with FASTSUSPEND_AUTO_APT=1: try `apt-get install -y libxen-dev`.
// FASTSUSPEND_XEN_INCLUDE=<dir> overrides where xenctrl.h is looked for (tests use it).
"use strict";

const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");

const pkgDir = path.resolve(__dirname, "..");
const required = process.argv.includes("--require");
const PKGS = ["xencontrol", "xenguest", "xenevtchn", "xencall", "xentoollog"];
const HEADERS = ["xenctrl.h", "xenevtchn.h", "xencall.h", "xenguest.h", "xentoollog.h"];

function log(msg) {
  process.stderr.write(`@fastsuspend/xen: ${msg}\n`);
}

function run(cmd, args, opts = {}) {
  return spawnSync(cmd, args, { encoding: "utf8", ...opts });
}

/** Which headers are missing, or null when every one is found. */
function missingHeaders() {
  const override = process.env.FASTSUSPEND_XEN_INCLUDE;
  let dirs;
  if (override !== undefined) {
    dirs = [override];
  } else {
    const pc = run("pkg-config", ["--cflags-only-I", ...PKGS]);
    if (pc.status !== 0 && !pc.error) {
      return { what: `pkg-config does not know ${PKGS.join(", ")}`, detail: pc.stderr.trim() };
    }
    const fromPc = pc.status === 0 ? pc.stdout.split(/\s+/).filter((s) => s.startsWith("-I")).map((s) => s.slice(2)) : [];
    dirs = [...fromPc, "/usr/include", "/usr/local/include"];
  }
  const missing = HEADERS.filter((h) => !dirs.some((d) => fs.existsSync(path.join(d, h))));
  return missing.length === 0 ? null : { what: `missing ${missing.join(", ")}`, detail: `looked in ${dirs.join(", ")}` };
}

function isDebian() {
  return fs.existsSync("/etc/debian_version");
}

function tryApt() {
  if (process.env.FASTSUSPEND_AUTO_APT !== "1") return false;
  if (typeof process.getuid !== "function" || process.getuid() !== 0 || !isDebian()) {
    log("FASTSUSPEND_AUTO_APT=1 ignored: needs root on Debian");
    return false;
  }
  log("FASTSUSPEND_AUTO_APT=1: running apt-get install -y libxen-dev pkg-config");
  const r = run("apt-get", ["install", "-y", "libxen-dev", "pkg-config"], {
    stdio: "inherit",
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
  });
  return r.status === 0;
}

/** node-gyp's own dir (root workspace install), or null to use npx. */
function nodeGypBin() {
  try {
    return require.resolve("node-gyp/bin/node-gyp.js", { paths: [pkgDir] });
  } catch {
    return null;
  }
}

function build() {
  const args = ["rebuild"];
  // Distro Node ships its headers: point node-gyp at them instead of downloading a tarball.
  if (!process.env.npm_config_nodedir) {
    const prefix = path.resolve(path.dirname(process.execPath), "..");
    if (fs.existsSync(path.join(prefix, "include", "node", "node_api.h"))) args.push(`--nodedir=${prefix}`);
  }
  const bin = nodeGypBin();
  const r = bin
    ? run(process.execPath, [bin, ...args], { cwd: pkgDir, stdio: "inherit" })
    : run("npx", ["--no-install", "node-gyp", ...args], { cwd: pkgDir, stdio: "inherit" });
  return r.status === 0;
}

function main() {
  if (process.env.FASTSUSPEND_SKIP_NATIVE === "1") {
    log("FASTSUSPEND_SKIP_NATIVE=1: not building the native addon");
    return required ? 1 : 0;
  }
  let missing = missingHeaders();
  if (missing && tryApt()) missing = missingHeaders();
  if (missing) {
    log(`cannot build the native addon: Xen tool headers not found (${missing.what}).`);
    if (missing.detail) log(missing.detail);
    log(
      isDebian()
        ? "fix: apt-get install libxen-dev pkg-config   (or set FASTSUSPEND_AUTO_APT=1 and run as root)"
        : "fix: install your distribution's Xen development package (headers + pkg-config files for xencontrol, xenevtchn, xencall)",
    );
    log(required ? "--require given: failing." : "the fake binding (src/fake) still works; openXen() will say the addon is not built.");
    return required ? 1 : 0;
  }
  if (!build()) {
    log("node-gyp rebuild failed (see above).");
    return required ? 1 : 0;
  }
  return 0;
}

process.exitCode = main();

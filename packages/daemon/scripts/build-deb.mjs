#!/usr/bin/env node
// Builds fastsuspend_<version>_amd64.deb with dpkg-deb: the daemon, the CLI, the packages they load
// at run time (built dist only, no source maps or type declarations), the xen native addon, the
// systemd unit. Run `npm run build` first (turbo) and `npm run deb -w @fastsuspend/daemon`.
// Output: packages/daemon/dist-deb/fastsuspend_<version>_amd64.deb (or --out DIR).
import { spawnSync } from "node:child_process";
import { chmodSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const pkgDir = join(here, "..");
const repo = join(pkgDir, "..", "..");
const outIdx = process.argv.indexOf("--out");
const outDir = outIdx > 0 ? process.argv[outIdx + 1] : join(pkgDir, "dist-deb");
const version = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8")).version;
const deb = join(outDir, `fastsuspend_${version}_amd64.deb`);
const root = join(outDir, "root");
const lib = "usr/lib/fastsuspend";

// What `fastsuspend` and `fastsuspendd` require at run time (the lab and the host-side bench are not shipped).
const PACKAGES = ["xen", "xenstore", "coordinator", "daemon", "cli"];

function die(msg) {
  process.stderr.write(`build-deb: ${msg}\n`);
  process.exit(1);
}

if (spawnSync("dpkg-deb", ["--version"], { stdio: "ignore" }).status !== 0) die("dpkg-deb not found (apt-get install dpkg)");
for (const p of PACKAGES) {
  if (!existsSync(join(repo, "packages", p, "dist", "index.js"))) die(`packages/${p}/dist is missing: run \`npm run build\` (or npx turbo run build) first`);
}
const addon = join(repo, "packages", "xen", "build", "Release", "xen.node");
if (!existsSync(addon)) die(`${relative(repo, addon)} is missing: build packages/xen (needs libxen-dev)`);

rmSync(root, { recursive: true, force: true });
mkdirSync(join(root, "DEBIAN"), { recursive: true });

for (const p of PACKAGES) {
  const src = join(repo, "packages", p);
  const meta = JSON.parse(readFileSync(join(src, "package.json"), "utf8"));
  const dest = join(root, lib, "node_modules", "@fastsuspend", p);
  mkdirSync(dest, { recursive: true });
  // Keep only what resolution needs; dependencies are all @fastsuspend/* (copied alongside) or build-time.
  const slim = { name: meta.name, version: meta.version, license: meta.license, main: meta.main, types: meta.types, ...(meta.exports ? { exports: meta.exports } : {}) };
  writeFileSync(join(dest, "package.json"), `${JSON.stringify(slim, null, 2)}\n`);
  cpSync(join(src, "dist"), join(dest, "dist"), {
    recursive: true,
    filter: (f) => !f.endsWith(".map") && !f.endsWith(".d.ts") && !/\.test\.js$/.test(f) && !/[\\/]lab-probes([\\/]|$)/.test(f),
  });
}
mkdirSync(join(root, lib, "node_modules/@fastsuspend/xen/build/Release"), { recursive: true });
cpSync(addon, join(root, lib, "node_modules/@fastsuspend/xen/build/Release/xen.node"));

const wrapper = (target) => `#!/bin/sh\n# installed by the fastsuspend package\nexec node /${lib}/node_modules/@fastsuspend/${target} "$@"\n`;
mkdirSync(join(root, "usr/bin"), { recursive: true });
mkdirSync(join(root, "usr/sbin"), { recursive: true });
writeFileSync(join(root, "usr/bin/fastsuspend"), wrapper("cli/dist/main.js"));
writeFileSync(join(root, "usr/sbin/fastsuspendd"), wrapper("daemon/dist/main.js"));
chmodSync(join(root, "usr/bin/fastsuspend"), 0o755);
chmodSync(join(root, "usr/sbin/fastsuspendd"), 0o755);
mkdirSync(join(root, "lib/systemd/system"), { recursive: true });
cpSync(join(pkgDir, "debian", "fastsuspendd.service"), join(root, "lib/systemd/system/fastsuspendd.service"));

function sizeKb(dir) {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) n += sizeKb(p);
    else n += Math.ceil(statSync(p).size / 1024);
  }
  return n;
}

// Debian bookworm names: libxenctrl and libxenguest are in libxenmisc4.17. The xenstore client is
// pure TypeScript (no libxenstore). Node.js: Debian's nodejs, or NodeSource's (also "nodejs").
const control = [
  "Package: fastsuspend",
  `Version: ${version}`,
  "Architecture: amd64",
  "Maintainer: fastsuspend developers <fastsuspend@localhost>",
  `Installed-Size: ${sizeKb(root)}`,
  "Depends: nodejs (>= 18), libxenmisc4.17, libxenevtchn1, libxencall1, libc6, libstdc++6, libgcc-s1",
  "Recommends: xen-utils-4.17",
  "Section: admin",
  "Priority: optional",
  "Homepage: https://github.com/fastsuspend/fastsuspend",
  "Description: fast suspend, resume and checkpoints for Xen guests (dom0)",
  " fastsuspendd keeps per-domain suspend channels warm, serves suspend, resume,",
  " checkpoint loops, status and Prometheus metrics on a root-only unix socket",
  " (/run/fastsuspend/daemon.sock), and hands each domain back to libxl between",
  " its cycles. The fastsuspend CLI uses it when it runs and works without it.",
  "",
].join("\n");
writeFileSync(join(root, "DEBIAN/control"), control);

// Maintainer scripts: only act under systemd (the lab's dom0 has none; busybox dpkg runs these with /bin/sh).
const postinst = `#!/bin/sh
set -e
if [ "$1" = configure ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload || true
  systemctl enable fastsuspendd.service || true
  systemctl restart fastsuspendd.service || true
fi
exit 0
`;
const prerm = `#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
  systemctl stop fastsuspendd.service || true
  if [ "$1" = remove ]; then systemctl disable fastsuspendd.service || true; fi
fi
exit 0
`;
writeFileSync(join(root, "DEBIAN/postinst"), postinst);
writeFileSync(join(root, "DEBIAN/prerm"), prerm);
chmodSync(join(root, "DEBIAN/postinst"), 0o755);
chmodSync(join(root, "DEBIAN/prerm"), 0o755);

mkdirSync(outDir, { recursive: true });
rmSync(deb, { force: true });
// gzip: busybox's dpkg (the lab's dom0) reads gzip members for sure.
const r = spawnSync("dpkg-deb", ["--build", "--root-owner-group", "-Zgzip", root, deb], { encoding: "utf8" });
if (r.status !== 0) die(`dpkg-deb failed: ${r.stderr || r.stdout}`);
rmSync(root, { recursive: true, force: true });
process.stdout.write(`${deb} (${Math.round(statSync(deb).size / 1024)} KiB)\n`);

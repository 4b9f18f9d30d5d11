#!/usr/bin/env node
// Builds fastsuspend_<version>_amd64.deb the Debian way: stages the built tree next to
// packages/daemon/debian/ and runs `dpkg-buildpackage -us -uc -b` on it (debhelper: Depends from
// dpkg-shlibdeps, the unit's maintainer scripts from dh_installsystemd, man pages, md5sums).
// Staged: the daemon, the CLI and the packages they load at run time (built dist/ only, no source
// maps, type declarations, tests or lab probes), the xen native addon, two shell wrappers. Not the
// lab, the bench or any test code. Run `npm run build` first (turbo), then
// `npm run deb -w @fastsuspend/daemon`. Needs dpkg-dev and debhelper (scripts/bootstrap.mjs).
// Output: packages/daemon/dist-deb/fastsuspend_<version>_amd64.deb (or --out DIR), path printed.
// For another Debian release's dom0 (the lab's --stack trixie): --addon FILE (the addon built
// against that release's libxen-dev), --lib-dir DIR (its library packages unpacked, where
// dh_shlibdeps finds what the addon links) and --shlibs-local FILE (debian/shlibs.local naming
// their packages); @fastsuspend/lab's stackDebInputs() makes all three.
import { spawnSync } from "node:child_process";
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const pkgDir = join(here, "..");
const repo = join(pkgDir, "..", "..");
const opt = (name) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const outDir = opt("out") ?? join(pkgDir, "dist-deb");
const libDir = opt("lib-dir");
const shlibsLocal = opt("shlibs-local");
if ((libDir === undefined) !== (shlibsLocal === undefined)) die("--lib-dir and --shlibs-local go together");
const version = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8")).version;
const deb = join(outDir, `fastsuspend_${version}_amd64.deb`);
// dpkg-buildpackage writes the .deb, .buildinfo and .changes into the staging directory's parent.
const buildDir = join(outDir, "build");
const stage = join(buildDir, `fastsuspend-${version}`);
const lib = "usr/lib/fastsuspend";

// What `fastsuspend` and `fastsuspendd` require at run time (the lab and the host-side bench are not shipped).
const PACKAGES = ["xen", "xenstore", "coordinator", "daemon", "cli"];
// Left out of each dist/: source maps, declarations, tests, the fakes and contract suites
// (testing/), the coordinator's lab probes, a bench/ folder a build from before the benchmarks
// moved to packages/bench may have left behind, and a test/ folder that `tsc -p tsconfig.json`
// (the typecheck config, which includes test/) emits when run by hand (session 16: its empty
// directory reached the package).
function shipped(file) {
  if (file.endsWith(".map") || file.endsWith(".d.ts") || /\.test\.js$/.test(file)) return false;
  return !/[\\/](lab-probes|testing|bench|test)([\\/]|$)/.test(file);
}

function die(msg) {
  process.stderr.write(`build-deb: ${msg}\n`);
  process.exit(1);
}

for (const [tool, pkg] of [["dpkg-buildpackage", "dpkg-dev"], ["dh", "debhelper"]]) {
  if (spawnSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" }).status !== 0) die(`${tool} not found (apt-get install ${pkg}; scripts/bootstrap.mjs installs it)`);
}
for (const p of PACKAGES) {
  if (!existsSync(join(repo, "packages", p, "dist", "index.js"))) die(`packages/${p}/dist is missing: run \`npm run build\` (or npx turbo run build) first`);
}
const addon = opt("addon") ?? join(repo, "packages", "xen", "build", "Release", "xen.node");
if (!existsSync(addon)) die(`${relative(repo, addon)} is missing: build packages/xen (needs libxen-dev)`);
// debian/changelog is the package's version; package.json is npm's. They must agree.
const changelogVersion = /^fastsuspend \(([^)]+)\)/.exec(readFileSync(join(pkgDir, "debian", "changelog"), "utf8"))?.[1];
if (changelogVersion !== version) die(`debian/changelog's top entry is ${changelogVersion ?? "missing"} but package.json says ${version}: add a changelog entry (dch -v ${version})`);

rmSync(buildDir, { recursive: true, force: true });
mkdirSync(stage, { recursive: true });
cpSync(join(pkgDir, "debian"), join(stage, "debian"), { recursive: true });
if (shlibsLocal !== undefined) cpSync(shlibsLocal, join(stage, "debian", "shlibs.local"));

for (const p of PACKAGES) {
  const src = join(repo, "packages", p);
  const meta = JSON.parse(readFileSync(join(src, "package.json"), "utf8"));
  const dest = join(stage, lib, "node_modules", "@fastsuspend", p);
  mkdirSync(dest, { recursive: true });
  // Keep only what resolution needs; dependencies are all @fastsuspend/* (copied alongside) or build-time.
  const exports = meta.exports === undefined ? undefined : Object.fromEntries(Object.entries(meta.exports).filter(([k]) => k !== "./testing"));
  const slim = { name: meta.name, version: meta.version, license: meta.license, main: meta.main, ...(exports ? { exports } : {}) };
  writeFileSync(join(dest, "package.json"), `${JSON.stringify(slim, null, 2)}\n`);
  cpSync(join(src, "dist"), join(dest, "dist"), {
    recursive: true,
    filter: (f) => shipped(f),
  });
}
mkdirSync(join(stage, lib, "node_modules/@fastsuspend/xen/build/Release"), { recursive: true });
cpSync(addon, join(stage, lib, "node_modules/@fastsuspend/xen/build/Release/xen.node"));

// `node` from PATH: Debian's or NodeSource's nodejs (/usr/bin/node), or the lab dom0's copied binary.
const wrapper = (target) => `#!/bin/sh\n# installed by the fastsuspend package\nexec node /${lib}/node_modules/@fastsuspend/${target} "$@"\n`;
mkdirSync(join(stage, "usr/bin"), { recursive: true });
mkdirSync(join(stage, "usr/sbin"), { recursive: true });
writeFileSync(join(stage, "usr/bin/fastsuspend"), wrapper("cli/dist/main.js"));
writeFileSync(join(stage, "usr/sbin/fastsuspendd"), wrapper("daemon/dist/main.js"));
chmodSync(join(stage, "usr/bin/fastsuspend"), 0o755);
chmodSync(join(stage, "usr/sbin/fastsuspendd"), 0o755);
chmodSync(join(stage, "debian/rules"), 0o755);

const r = spawnSync("dpkg-buildpackage", ["-us", "-uc", "-b"], { cwd: stage, encoding: "utf8", env: { ...process.env, ...(libDir === undefined ? {} : { FASTSUSPEND_LIB_DIR: libDir }) } });
const built = join(buildDir, `fastsuspend_${version}_amd64.deb`);
if (r.status !== 0 || !existsSync(built)) die(`dpkg-buildpackage failed (exit ${r.status}):\n${(r.stdout + r.stderr).split("\n").slice(-40).join("\n")}`);
mkdirSync(outDir, { recursive: true });
rmSync(deb, { force: true });
renameSync(built, deb);
rmSync(buildDir, { recursive: true, force: true });
process.stdout.write(`${deb} (${Math.round(statSync(deb).size / 1024)} KiB)\n`);

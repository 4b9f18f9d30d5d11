// The lab's artefacts for a stack other than bookworm (today: trixie, Xen 4.20 and Linux 6.12).
// bookworm's are built by artefacts.ts, which is left exactly as it was, so its cache key and
// output do not change; this builder does the same steps for another Debian release, with three
// differences:
//  - the packages come through the project's own apt configuration for that release
//    ($CACHE/apt-<suite>, shared with kernel/build.sh --base 6.12), never the host's;
//  - every shared library in dom0, glibc and the loader included, comes from that release's
//    packages, not from the host (trixie's Xen tools need glibc >= 2.38, bookworm has 2.36), and
//    the libraries each binary needs are read from the ELF files and resolved inside the image
//    (elf-needed.ts), so a missing one fails the build, not the boot;
//  - kernel modules may be compressed (.ko.xz/.ko.zst) or built in (modules.builtin).
// The host's Node.js binary still goes into dom0 (it runs the project's TypeScript): built for
// bookworm's glibc, it runs on the newer one.
import { createHash } from "node:crypto";
import { spawnSync } from "node:child_process";
import {
  chmodSync, copyFileSync, cpSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync,
  symlinkSync, writeFileSync,
} from "node:fs";
import { basename, join } from "node:path";
import { gunzipSync } from "node:zlib";
import { assertDiskSpace, downloadPinned, ensureHostPackages, ensureProjectApt, extractDeb } from "./apt";
import type { LabArtefacts } from "./artefacts";
import { writeInitramfs } from "./cpio";
import { extractVmlinux } from "./elf";
import { readElfDynamic, resolveNeeded } from "./elf-needed";
import { LabError } from "./errors";
import { assetsDir, cacheDir, repoDir } from "./paths";
import { type OtherStack, type Stack, type StackPins, loadStackPins, stackPinsFile } from "./pins";
import { type Progress, silent, timed } from "./progress";

/** Bump when this builder's output changes for the same inputs. */
const BUILDER_VERSION = "stack-2";

/**
 * Modules dom0 needs (as in artefacts.ts); each is loaded from its .ko, or is built into the kernel.
 * loop and xen-blkback too, for the lab tests' vbds: on bookworm those tests load them from the
 * pinned kernel package, whose modules would not load into trixie's kernel.
 */
const DOM0_MODULES = [
  "drivers/xen/xen-privcmd", "drivers/xen/xenfs/xenfs", "drivers/xen/xen-evtchn",
  "drivers/xen/xen-gntdev", "drivers/xen/xen-gntalloc",
  "drivers/virtio/virtio_pci", "drivers/char/virtio_console", "net/9p/9pnet_virtio", "fs/9p/9p",
  "drivers/block/loop", "drivers/block/xen-blkback/xen-blkback",
];

/** Where dom0's libraries go and are looked for (Debian multiarch; trixie ships them under /usr). */
const LIB_DIR = "usr/lib/x86_64-linux-gnu";
const LIB_DIRS = [LIB_DIR, "lib/x86_64-linux-gnu", "usr/lib64", "lib64"];

export interface StackArtefacts extends LabArtefacts {
  stack: Stack;
  suite: string;
  /** Xen's major.minor (4.20): the tools are in /usr/lib/xen-<xenRelease>/bin in dom0. */
  xenRelease: string;
}

function sha256(parts: (string | Buffer)[]): string {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return h.digest("hex");
}

const GUEST_ASSETS = ["guest-init.sh", "guest-hvprobe.c", "guest-xsprobe.c", "guest-blackout.c", "guest-phases.c", "guest-writer.c", "guest-xsreq.h"];

export function stackArtefactKey(stack: OtherStack): string {
  const st = statSync(process.execPath);
  return sha256([
    BUILDER_VERSION,
    `stack ${stack}`,
    readFileSync(stackPinsFile(stack)),
    readFileSync(join(assetsDir, "dom0-init.sh")),
    ...GUEST_ASSETS.map((a) => readFileSync(join(assetsDir, a))),
    `${process.execPath}:${st.size}:${st.mtimeMs}`,
    readFileSync(__filename),
    readFileSync(join(__dirname, `elf-needed${__filename.endsWith(".ts") ? ".ts" : ".js"}`)),
  ]).slice(0, 16);
}

/** The cache directory of a stack's artefacts: lab/<stack>-<key>. */
export function stackArtefactDir(stack: OtherStack): string {
  return join(cacheDir(), "lab", `${stack}-${stackArtefactKey(stack)}`);
}

/** The downloaded .debs of a stack, apart from bookworm's (cacheDir/debs). */
export const stackDebDir = (stack: Stack): string => join(cacheDir(), "debs", stack);

/** dom0's init: the bookworm one (assets/dom0-init.sh) with this stack's Xen tool directory on PATH. */
export function stackDom0Init(xen: string): string {
  const init = readFileSync(join(assetsDir, "dom0-init.sh"), "utf8");
  if (!init.includes("/usr/lib/xen-4.17/bin")) throw new Error("assets/dom0-init.sh no longer puts /usr/lib/xen-4.17/bin on PATH: update stackDom0Init()");
  return init.replaceAll("/usr/lib/xen-4.17/", `/usr/lib/xen-${xen}/`);
}

/** Returns a stack's cached artefacts, building them first when the cache has none for this key. */
export async function buildStackArtefacts(stack: OtherStack, progress: Progress = silent): Promise<StackArtefacts> {
  const pins = loadStackPins(stack);
  await timed(progress, `host packages (${pins.hostPackages.join(", ")})`, () => ensureHostPackages(pins.hostPackages));
  const key = stackArtefactKey(stack);
  const dir = stackArtefactDir(stack);
  const manifest = join(dir, "manifest.json");
  if (existsSync(manifest)) return JSON.parse(readFileSync(manifest, "utf8")) as StackArtefacts;

  mkdirSync(cacheDir(), { recursive: true });
  assertDiskSpace(cacheDir(), 2000);
  const apt = ensureProjectApt(pins.apt);
  const debs = await timed(progress, `download pinned Debian ${pins.suite} packages (${apt.dir})`, () => downloadPinned(pins.packages, stackDebDir(stack), apt));
  const staging = `${dir}.tmp-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  const x = join(staging, "x");
  mkdirSync(x, { recursive: true });
  try {
    await timed(progress, `unpack ${debs.length} packages`, async () => {
      for (const deb of debs) await extractDeb(deb, x);
    });
    const out = join(staging, "out");
    mkdirSync(out);
    const xenGz = join(x, "boot", `xen-${pins.xen}-amd64.gz`);
    if (!existsSync(xenGz)) throw new Error(`xen-hypervisor-${pins.xen}-amd64 has no boot/xen-${pins.xen}-amd64.gz`);
    writeFileSync(join(out, "xen"), gunzipSync(readFileSync(xenGz)));
    const vmlinuz = join(x, "boot", `vmlinuz-${pins.dom0Kernel}`);
    await timed(progress, "extract dom0 vmlinux", async () => { writeFileSync(join(out, "vmlinux"), await extractAnyVmlinux(vmlinuz)); });
    copyFileSync(vmlinuz, join(out, "guest-vmlinuz"));
    await timed(progress, `dom0 initramfs (${pins.suite}: Xen ${pins.xen} tools, ${pins.suite}'s own libraries)`, () => buildDom0Initramfs(x, pins, join(out, "dom0-initrd.gz"), join(staging, "dom0")));
    await timed(progress, "guest initramfs", () => buildGuestInitramfs(x, join(out, "guest-initrd.gz"), join(staging, "guest")));
    rmSync(dir, { recursive: true, force: true });
    renameSync(out, dir);
    const result: StackArtefacts = {
      key: `${stack}-${key}`, dir, stack, suite: pins.suite, xenRelease: pins.xen,
      xenVersion: pins.packages[`xen-hypervisor-${pins.xen}-amd64`] ?? "unknown",
      xen: join(dir, "xen"),
      dom0Kernel: join(dir, "vmlinux"),
      dom0Initrd: join(dir, "dom0-initrd.gz"),
      guestKernel: join(dir, "guest-vmlinuz"),
      guestInitrd: join(dir, "guest-initrd.gz"),
    };
    writeFileSync(manifest, JSON.stringify(result, null, 2));
    return result;
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/**
 * The uncompressed kernel inside a bzImage, for Xen to load without decompressing it (slow under
 * TCG). bookworm's is xz (elf.ts's extractVmlinux); trixie's 6.12 is zstd.
 */
async function extractAnyVmlinux(bzImage: string): Promise<Buffer> {
  const data = readFileSync(bzImage);
  const zstdAt = data.indexOf(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]));
  const xzAt = data.indexOf(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]));
  if (zstdAt < 0 || (xzAt >= 0 && xzAt < zstdAt)) return extractVmlinux(bzImage);
  // zstd stops with an error at the bytes after its frame; what it wrote before is the kernel.
  const r = spawnSync("zstd", ["-dc"], { input: data.subarray(zstdAt), maxBuffer: 512 * 2 ** 20 });
  if (r.error) throw new LabError(`zstd: ${r.error.message}`, "apt-get install zstd");
  if (r.stdout.subarray(0, 4).toString("latin1") !== "\x7fELF") throw new Error(`${bzImage}: zstd payload is not an ELF (${r.stderr.toString().trim()})`);
  return r.stdout;
}

function copyFileInto(root: string, src: string, dest: string): void {
  mkdirSync(join(root, dest, ".."), { recursive: true });
  cpSync(src, join(root, dest), { dereference: true });
}

/** A module's bytes, decompressed (busybox insmod takes plain .ko files). */
function moduleBytes(path: string): Buffer {
  if (path.endsWith(".ko")) return readFileSync(path);
  const tool = path.endsWith(".xz") ? "xz" : path.endsWith(".zst") ? "zstd" : undefined;
  if (!tool) throw new Error(`unknown module compression: ${path}`);
  const r = spawnSync(tool, ["-dc", path], { maxBuffer: 256 * 2 ** 20 });
  if (r.status !== 0) throw new Error(`${tool} -dc ${path} failed: ${r.error?.message ?? r.stderr.toString()}`);
  return r.stdout;
}

function modinfoDepends(data: Buffer): string[] {
  const at = data.indexOf("depends=");
  if (at < 0) return [];
  const list = data.subarray(at + "depends=".length, data.indexOf(0, at)).toString();
  return list ? list.split(",") : [];
}

const modName = (file: string): string => basename(file).replace(/\.ko(\.xz|\.zst|\.gz)?$/, "").replace(/-/g, "_");

async function buildDom0Initramfs(x: string, pins: StackPins, file: string, root: string): Promise<void> {
  const xenLib = `usr/lib/xen-${pins.xen}`;
  for (const d of ["bin", "sbin", "etc", "proc", "sys", "dev", "tmp", "run", "root", "var/run/xen", "var/log/xen", "var/lib/xen", "lib/modules", "usr/bin", "lib64", LIB_DIR]) {
    mkdirSync(join(root, d), { recursive: true });
  }
  const busybox = ["usr/bin/busybox", "bin/busybox"].map((p) => join(x, p)).find((p) => existsSync(p));
  if (!busybox) throw new Error("busybox-static has no busybox binary");
  copyFileSync(busybox, join(root, "bin/busybox"));
  if (!existsSync(join(x, xenLib, "bin"))) throw new Error(`xen-utils-${pins.xen} has no ${xenLib}/bin`);
  cpSync(join(x, xenLib), join(root, xenLib), { recursive: true });
  cpSync(join(x, "etc/xen"), join(root, "etc/xen"), { recursive: true });
  for (const f of readdirSync(join(x, "usr/bin")).filter((f) => f.startsWith("xenstore"))) copyFileInto(root, join(x, "usr/bin", f), `usr/bin/${f}`);
  // Every shared library the packages hold (the Xen libraries, glibc, libgcc_s: xl dlopens it for
  // pthread_cancel, libstdc++ for Node.js, ...), dereferenced under their sonames.
  for (const d of ["usr/lib/x86_64-linux-gnu", "lib/x86_64-linux-gnu"]) {
    if (!existsSync(join(x, d))) continue;
    for (const f of readdirSync(join(x, d)).filter((f) => /\.so(\.\d+)+$/.test(f) || /^ld-linux-x86-64\.so\.2$/.test(f))) {
      if (lstatSync(join(x, d, f)).isDirectory()) continue;
      copyFileInto(root, join(x, d, f), `${LIB_DIR}/${f}`);
    }
  }
  if (!existsSync(join(root, LIB_DIR, "ld-linux-x86-64.so.2"))) throw new Error(`libc6 of ${pins.suite} has no ld-linux-x86-64.so.2`);
  copyFileSync(join(root, LIB_DIR, "ld-linux-x86-64.so.2"), join(root, "lib64/ld-linux-x86-64.so.2"));
  copyFileSync(process.execPath, join(root, "usr/bin/node"));
  // Check that every binary's libraries are in the image (read from the ELF files, not by ldd).
  const bins = [join(root, "usr/bin/node"), ...readdirSync(join(root, xenLib, "bin")).map((f) => join(root, xenLib, "bin", f)),
    ...readdirSync(join(root, "usr/bin")).map((f) => join(root, "usr/bin", f))];
  const need = resolveNeeded(root, bins, [`${xenLib}/lib`, ...LIB_DIRS]);
  if (need.missing.length > 0) {
    throw new LabError(`dom0 image of ${pins.suite} lacks ${need.missing.length} libraries: ${need.missing.slice(0, 8).join("; ")}`, `add the packages that ship them to ${stackPinsFile(pins.suite as Stack)}`);
  }
  for (const i of need.interps) {
    if (!existsSync(join(root, i))) throw new Error(`dom0 image has no ${i} (the program interpreter of its binaries)`);
  }
  writeFileSync(join(root, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n");
  writeFileSync(join(root, "etc/group"), "root:x:0:\n");
  // Kernel modules, decompressed and flattened, dependencies first; built-in ones are skipped.
  // trixie's kernel package ships its modules under /usr (merged /usr), bookworm's under /lib.
  const kbase = ["usr/lib/modules", "lib/modules"].map((d) => join(x, d, pins.dom0Kernel)).find((d) => existsSync(d));
  if (!kbase) throw new Error(`linux-image-${pins.dom0Kernel} has no lib/modules/${pins.dom0Kernel}`);
  const kdir = join(kbase, "kernel");
  const builtin = new Set(
    existsSync(join(kbase, "modules.builtin")) ? readFileSync(join(kbase, "modules.builtin"), "utf8").split("\n").filter(Boolean).map(modName) : [],
  );
  const byName = new Map<string, string>();
  const index = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) index(join(dir, e.name));
      else if (/\.ko(\.xz|\.zst)?$/.test(e.name)) byName.set(modName(e.name), join(dir, e.name));
    }
  };
  index(kdir);
  const order: string[] = [];
  const visit = (name: string, wantedBy: string): void => {
    const path = byName.get(name);
    if (!path) {
      if (builtin.has(name)) return;
      throw new Error(`module ${name} (for ${wantedBy}) is neither in ${pins.dom0Kernel}'s package nor built in`);
    }
    const ko = `${name}.ko`;
    if (order.includes(ko)) return;
    const data = moduleBytes(path);
    for (const dep of modinfoDepends(data)) visit(dep.replace(/-/g, "_"), name);
    writeFileSync(join(root, "lib/modules", ko), data);
    order.push(ko);
  };
  for (const m of DOM0_MODULES) visit(modName(m), "dom0");
  writeFileSync(join(root, "lib/modules/load-order"), order.join("\n") + (order.length > 0 ? "\n" : ""));
  writeFileSync(join(root, "init"), stackDom0Init(pins.xen));
  chmodSync(join(root, "init"), 0o755);
  await writeInitramfs(root, file, 1, [{ path: "dev/console", major: 5, minor: 1 }]);
}

/** A static binary for the guest's busybox userspace (the host's gcc and glibc, as artefacts.ts). */
function compileStatic(source: string, out: string): void {
  const r = spawnSync("gcc", ["-static", "-Os", "-s", "-Wall", "-o", out, source], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`gcc -static ${source} failed (${r.error?.message ?? `exit ${String(r.status)}`}): ${r.stderr}; install build-essential`);
}

/** The same guest image as bookworm's (static probes built on the host), with this release's busybox. */
async function buildGuestInitramfs(x: string, file: string, root: string): Promise<void> {
  for (const d of ["bin", "proc", "sys", "dev"]) mkdirSync(join(root, d), { recursive: true });
  const busybox = ["usr/bin/busybox", "bin/busybox"].map((p) => join(x, p)).find((p) => existsSync(p));
  if (!busybox) throw new Error("busybox-static has no busybox binary");
  copyFileSync(busybox, join(root, "bin/busybox"));
  symlinkSync("busybox", join(root, "bin/sh"));
  for (const [src, bin] of [["guest-hvprobe.c", "hvprobe"], ["guest-xsprobe.c", "xsprobe"], ["guest-blackout.c", "blackout"], ["guest-phases.c", "phases"], ["guest-writer.c", "writer"]] as const) {
    compileStatic(join(assetsDir, src), join(root, "bin", bin));
  }
  copyFileSync(join(assetsDir, "guest-init.sh"), join(root, "init"));
  chmodSync(join(root, "init"), 0o755);
  await writeInitramfs(root, file, 6, [{ path: "dev/console", major: 5, minor: 1 }]);
}

/** Bump when the addon builder's output changes for the same inputs. */
const ADDON_BUILDER_VERSION = "addon-1";

/** What goes into a stack's addon sysroot: its Xen libraries and headers, not glibc or libstdc++ (the host's toolchain links those). */
export function sysrootPackages(pins: StackPins): Record<string, string> {
  const libs = Object.entries(pins.packages).filter(([p]) => /^lib/.test(p) && !/^(libc6|libgcc-s1|libstdc\+\+6)$/.test(p));
  return { ...Object.fromEntries(libs), ...pins.sysrootPackages };
}

function addonSources(xenPkg: string): string[] {
  const native = join(xenPkg, "src", "native");
  return [join(xenPkg, "binding.gyp"), ...readdirSync(native).sort().map((f) => join(native, f))];
}

/**
 * The project's native addon (packages/xen) built for a stack: compiled with the host's toolchain
 * and node-gyp, against the stack's libxen-dev in a sysroot made from the stack's packages, so it
 * links libxenctrl.so.<xen> (the soname carries Xen's version) and takes that release's domctl
 * interface version from its headers. Cached under addon/<stack>-<key>/xen.node; the repo's own
 * build (packages/xen/build) is not touched. undefined, said on progress, when it cannot be built:
 * the lab boots without it, only @fastsuspend/xen does not load in dom0.
 */
export async function stackAddon(stack: OtherStack, progress: Progress = silent): Promise<string | undefined> {
  const pins = loadStackPins(stack);
  const xenPkg = join(repoDir, "packages", "xen");
  const sources = addonSources(xenPkg);
  const st = statSync(process.execPath);
  const key = sha256([
    ADDON_BUILDER_VERSION, `stack ${stack}`, JSON.stringify(sysrootPackages(pins)), readFileSync(__filename),
    `${process.execPath}:${st.size}:${st.mtimeMs}:${process.version}`,
    ...sources.flatMap((f) => [f.slice(xenPkg.length), readFileSync(f)]),
  ]).slice(0, 16);
  const dir = join(cacheDir(), "addon", `${stack}-${key}`);
  const out = join(dir, "xen.node");
  if (existsSync(out)) return out;
  const staging = `${dir}.tmp-${process.pid}`;
  try {
    return await timed(progress, `native addon for ${stack} (libxen-dev ${pins.sysrootPackages["libxen-dev"] ?? "?"}, sysroot)`, async () => {
      const apt = ensureProjectApt(pins.apt);
      const debs = await downloadPinned(sysrootPackages(pins), stackDebDir(stack), apt);
      rmSync(staging, { recursive: true, force: true });
      const sysroot = join(staging, "sysroot");
      mkdirSync(sysroot, { recursive: true });
      for (const deb of debs) await extractDeb(deb, sysroot);
      const src = join(staging, "xen");
      for (const f of sources) {
        mkdirSync(join(src, f.slice(xenPkg.length), ".."), { recursive: true });
        copyFileSync(f, join(src, f.slice(xenPkg.length)));
      }
      symlinkSync(join(repoDir, "node_modules"), join(src, "node_modules")); // node-addon-api
      const multiarch = join(sysroot, "usr/lib/x86_64-linux-gnu");
      // Node's headers from the installed Node.js (Debian's nodejs ships them), as the repo's own build: no download.
      const nodedir = join(process.execPath, "..", "..");
      const gypArgs = existsSync(join(nodedir, "include", "node", "common.gypi")) ? ["rebuild", `--nodedir=${nodedir}`] : ["rebuild"];
      const r = spawnSync("nice", [process.execPath, join(repoDir, "node_modules", "node-gyp", "bin", "node-gyp.js"), ...gypArgs], {
        cwd: src, encoding: "utf8", timeout: 900_000, maxBuffer: 64 * 2 ** 20,
        env: {
          ...process.env,
          PKG_CONFIG_SYSROOT_DIR: sysroot,
          PKG_CONFIG_LIBDIR: `${join(multiarch, "pkgconfig")}:${join(sysroot, "usr/share/pkgconfig")}`,
          PKG_CONFIG_PATH: "",
        },
      });
      if (r.status !== 0) throw new Error(`node-gyp rebuild against ${stack}'s libxen-dev failed (${r.error?.message ?? `exit ${String(r.status)}`}): ${(r.stderr || r.stdout).slice(-3000)}`);
      const built = join(src, "build", "Release", "xen.node");
      const needed = readElfDynamic(readFileSync(built))?.needed ?? [];
      if (!needed.includes(`libxenctrl.so.${pins.xen}`)) throw new Error(`the addon built for ${stack} links ${needed.join(", ")}, not libxenctrl.so.${pins.xen}`);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, "info"), [`stack=${stack}`, `libxen-dev=${pins.sysrootPackages["libxen-dev"] ?? ""}`, `needed=${needed.join(",")}`, `node=${process.version}`, `built=${new Date().toISOString()}`, ""].join("\n"));
      copyFileSync(built, `${out}.tmp`);
      renameSync(`${out}.tmp`, out);
      return out;
    });
  } catch (e) {
    progress(`the native addon for ${stack} could not be built, so @fastsuspend/xen will not load in dom0: ${(e as Error).message}`);
    return undefined;
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

// Builds (or finds in the cache) everything the lab boots: the uncompressed Xen image, dom0's
// vmlinux and initramfs (Xen 4.17 toolstack, both xenstoreds, Node.js), and a PV guest's kernel
// and initramfs. The cache entry's key is a hash of every input, so a changed pin, asset or
// Node.js binary makes a new entry and an unchanged one is reused at once.
import { createHash } from "node:crypto";
import { spawnSync } from "node:child_process";
import {
  chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync,
  symlinkSync, writeFileSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { gunzipSync } from "node:zlib";
import { assertDiskSpace, downloadPinned, ensureHostPackages, extractDeb } from "./apt";
import { writeInitramfs } from "./cpio";
import { extractVmlinux, moduleDepends, sharedLibs } from "./elf";
import { assetsDir, cacheDir, pinsFile } from "./paths";
import { loadPins } from "./pins";
import { type Progress, silent, timed } from "./progress";

/** Bump when the builder's output changes for the same inputs. */
const BUILDER_VERSION = "1";

/** Modules dom0 loads; their dependencies are added from the modules themselves. */
const DOM0_MODULES = [
  "drivers/xen/xen-privcmd.ko", "drivers/xen/xenfs/xenfs.ko", "drivers/xen/xen-evtchn.ko",
  "drivers/xen/xen-gntdev.ko", "drivers/xen/xen-gntalloc.ko",
  "drivers/virtio/virtio_pci.ko", "drivers/char/virtio_console.ko", "net/9p/9pnet_virtio.ko", "fs/9p/9p.ko",
];

export interface LabArtefacts {
  key: string;
  dir: string;
  /** Uncompressed multiboot Xen image (QEMU's -kernel). */
  xen: string;
  dom0Kernel: string;
  dom0Initrd: string;
  guestKernel: string;
  guestInitrd: string;
  xenVersion: string;
}

function sha256(parts: (string | Buffer)[]): string {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return h.digest("hex");
}

function fileIdentity(path: string): string {
  const st = statSync(path);
  return `${path}:${st.size}:${st.mtimeMs}`;
}

export function artefactKey(): string {
  return sha256([
    BUILDER_VERSION,
    readFileSync(pinsFile),
    readFileSync(join(assetsDir, "dom0-init.sh")),
    readFileSync(join(assetsDir, "guest-init.sh")),
    readFileSync(join(assetsDir, "guest-hvprobe.c")),
    readFileSync(join(assetsDir, "guest-xsprobe.c")),
    readFileSync(join(assetsDir, "guest-blackout.c")),
    readFileSync(join(assetsDir, "guest-phases.c")),
    readFileSync(join(assetsDir, "guest-writer.c")),
    readFileSync(join(assetsDir, "guest-xsreq.h")),
    fileIdentity(process.execPath),
    readFileSync(__filename),
  ]).slice(0, 16);
}

/** Returns the cached artefacts, building them first when the cache has none for this key. */
export async function buildArtefacts(progress: Progress = silent): Promise<LabArtefacts> {
  const pins = loadPins();
  await timed(progress, "host packages (qemu, libxen-dev)", () => ensureHostPackages(pins.hostPackages));
  const key = artefactKey();
  const dir = join(cacheDir(), "lab", key);
  const manifest = join(dir, "manifest.json");
  if (existsSync(manifest)) return JSON.parse(readFileSync(manifest, "utf8")) as LabArtefacts;

  mkdirSync(cacheDir(), { recursive: true });
  assertDiskSpace(cacheDir(), 1500);
  const debs = await timed(progress, "download pinned Debian packages", () => downloadPinned(pins.packages, join(cacheDir(), "debs")));
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
    const xenGz = readdirSync(join(x, "boot")).find((f) => /^xen-4\.17-amd64\.gz$/.test(f));
    if (!xenGz) throw new Error("xen-hypervisor package has no boot/xen-4.17-amd64.gz");
    writeFileSync(join(out, "xen"), gunzipSync(readFileSync(join(x, "boot", xenGz))));
    const vmlinuz = join(x, "boot", `vmlinuz-${pins.dom0Kernel}`);
    await timed(progress, "extract dom0 vmlinux", async () => { writeFileSync(join(out, "vmlinux"), await extractVmlinux(vmlinuz)); });
    copyFileSync(vmlinuz, join(out, "guest-vmlinuz"));
    await timed(progress, "dom0 initramfs", () => buildDom0Initramfs(x, pins.dom0Kernel, join(out, "dom0-initrd.gz"), join(staging, "dom0")));
    await timed(progress, "guest initramfs", () => buildGuestInitramfs(x, join(out, "guest-initrd.gz"), join(staging, "guest")));
    const xenVersion = pins.packages["xen-hypervisor-4.17-amd64"] ?? "unknown";
    rmSync(dir, { recursive: true, force: true });
    renameSync(out, dir);
    const result: LabArtefacts = {
      key, dir, xenVersion,
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

function copyInto(root: string, src: string, dest = src): void {
  mkdirSync(dirname(join(root, dest)), { recursive: true });
  cpSync(src, join(root, dest), { dereference: true });
}

async function buildDom0Initramfs(x: string, kver: string, file: string, root: string): Promise<void> {
  for (const d of ["bin", "sbin", "etc", "proc", "sys", "dev", "tmp", "run", "root", "var/run/xen", "var/log/xen", "var/lib/xen", "lib/modules", "usr/bin", "lib64"]) {
    mkdirSync(join(root, d), { recursive: true });
  }
  copyFileSync(join(x, "bin/busybox"), join(root, "bin/busybox"));
  cpSync(join(x, "usr/lib/xen-4.17"), join(root, "usr/lib/xen-4.17"), { recursive: true });
  cpSync(join(x, "etc/xen"), join(root, "etc/xen"), { recursive: true });
  for (const f of readdirSync(join(x, "usr/bin")).filter((f) => f.startsWith("xenstore"))) copyInto(root, join(x, "usr/bin", f), `usr/bin/${f}`);
  const libDir = "usr/lib/x86_64-linux-gnu";
  mkdirSync(join(root, libDir), { recursive: true });
  for (const f of readdirSync(join(x, libDir)).filter((f) => /\.so\.\d/.test(f))) copyInto(root, join(x, libDir, f), `${libDir}/${f}`);
  // Node.js runs the project's own packages in dom0: the host's runtime, so versions match.
  copyFileSync(process.execPath, join(root, "usr/bin/node"));
  // Shared libraries from the host's Debian system (same bookworm release as the pinned packages).
  const bins = [join(root, "usr/bin/node"), ...readdirSync(join(root, "usr/lib/xen-4.17/bin")).map((f) => join(root, "usr/lib/xen-4.17/bin", f)),
    ...readdirSync(join(root, "usr/bin")).map((f) => join(root, "usr/bin", f))];
  const libs = new Set<string>(["/lib/x86_64-linux-gnu/libgcc_s.so.1"]); // xl dlopens it for pthread_cancel
  for (const b of bins) for (const l of await sharedLibs(b, [join(root, libDir)])) if (!l.startsWith(root)) libs.add(l);
  for (const l of libs) copyInto(root, l);
  copyInto(root, "/lib64/ld-linux-x86-64.so.2");
  writeFileSync(join(root, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n");
  writeFileSync(join(root, "etc/group"), "root:x:0:\n");
  // Kernel modules, flattened, with a load order that puts dependencies first.
  const kdir = join(x, "lib/modules", kver, "kernel");
  const byName = new Map<string, string>();
  const index = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) index(join(dir, e.name));
      else if (e.name.endsWith(".ko")) byName.set(e.name.slice(0, -3).replace(/-/g, "_"), join(dir, e.name));
    }
  };
  index(kdir);
  const order: string[] = [];
  const visit = (path: string): void => {
    const name = basename(path);
    if (order.includes(name)) return;
    for (const dep of moduleDepends(path)) {
      const p = byName.get(dep.replace(/-/g, "_"));
      if (!p) throw new Error(`module ${name} needs ${dep}, not in the kernel package`);
      visit(p);
    }
    copyFileSync(path, join(root, "lib/modules", name));
    order.push(name);
  };
  for (const m of DOM0_MODULES) visit(join(kdir, m));
  writeFileSync(join(root, "lib/modules/load-order"), order.join("\n") + "\n");
  copyFileSync(join(assetsDir, "dom0-init.sh"), join(root, "init"));
  chmodSync(join(root, "init"), 0o755);
  await writeInitramfs(root, file, 1, [{ path: "dev/console", major: 5, minor: 1 }]);
}

/** A static binary for the guest's busybox userspace (the host's gcc and glibc, from build-essential). */
function compileStatic(source: string, out: string): void {
  const r = spawnSync("gcc", ["-static", "-Os", "-s", "-Wall", "-o", out, source], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`gcc -static ${source} failed (${r.error?.message ?? `exit ${String(r.status)}`}): ${r.stderr}; install build-essential`);
}

async function buildGuestInitramfs(x: string, file: string, root: string): Promise<void> {
  for (const d of ["bin", "proc", "sys", "dev"]) mkdirSync(join(root, d), { recursive: true });
  copyFileSync(join(x, "bin/busybox"), join(root, "bin/busybox"));
  symlinkSync("busybox", join(root, "bin/sh"));
  compileStatic(join(assetsDir, "guest-hvprobe.c"), join(root, "bin/hvprobe"));
  compileStatic(join(assetsDir, "guest-xsprobe.c"), join(root, "bin/xsprobe"));
  compileStatic(join(assetsDir, "guest-blackout.c"), join(root, "bin/blackout"));
  compileStatic(join(assetsDir, "guest-phases.c"), join(root, "bin/phases"));
  compileStatic(join(assetsDir, "guest-writer.c"), join(root, "bin/writer"));
  copyFileSync(join(assetsDir, "guest-init.sh"), join(root, "init"));
  chmodSync(join(root, "init"), 0o755);
  await writeInitramfs(root, file, 6, [{ path: "dev/console", major: 5, minor: 1 }]);
}

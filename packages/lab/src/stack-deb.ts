// What the project's .deb, built on this host, needs to be a package for another stack's dom0
// (issue 17: the dom0 packages are built per stack): the native addon built against that stack's
// libxen-dev (stackAddon); the stack's library packages unpacked where dpkg-shlibdeps finds the
// libraries the addon links; and debian/shlibs.local lines naming the package of each, since the
// host's dpkg database knows nothing of another release's libraries. Used by
// packages/daemon/scripts/build-deb.mjs --addon/--lib-dir/--shlibs-local.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";

import { downloadPinned, ensureProjectApt, extractDeb } from "./apt";
import { readElfDynamic } from "./elf-needed";
import { LabError } from "./errors";
import { cacheDir } from "./paths";
import { type OtherStack, loadStackPins } from "./pins";
import { type Progress, silent } from "./progress";
import { stackAddon, stackDebDir, sysrootPackages } from "./stack-artefacts";

export interface StackDebInputs {
  /** The addon linking the stack's libxenctrl. */
  addon: string;
  /** Where the stack's libraries are unpacked (for dh_shlibdeps -l). */
  libDir: string;
  /** A debian/shlibs.local for the addon's stack libraries. */
  shlibsLocal: string;
}

/** "libxenctrl.so.4.20" from package libxenctrl4.20 4.20.4-1 -> "libxenctrl 4.20 libxenctrl4.20 (>= 4.20.4-1)". */
export function shlibsLine(soname: string, pkg: string, version: string): string | undefined {
  const m = /^(lib.+)\.so\.(.+)$/.exec(soname);
  return m ? `${m[1]} ${m[2]} ${pkg} (>= ${version})` : undefined;
}

export async function stackDebInputs(stack: OtherStack, progress: Progress = silent): Promise<StackDebInputs> {
  const addon = await stackAddon(stack, progress);
  if (addon === undefined) throw new LabError(`no native addon for ${stack}`, "see the progress lines above for why it did not build");
  const pins = loadStackPins(stack);
  const pkgs = sysrootPackages(pins);
  const debs = await downloadPinned(pkgs, stackDebDir(stack), ensureProjectApt(pins.apt));
  const key = createHash("sha256").update(JSON.stringify(pkgs)).digest("hex").slice(0, 16);
  const root = join(cacheDir(), "deb-sysroot", `${stack}-${key}`);
  if (!existsSync(join(root, ".done"))) {
    const tmp = `${root}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    for (const deb of debs) await extractDeb(deb, tmp);
    writeFileSync(join(tmp, ".done"), "");
    rmSync(root, { recursive: true, force: true });
    renameSync(tmp, root);
  }
  const needed = readElfDynamic(readFileSync(addon))?.needed ?? [];
  const lines: string[] = [];
  for (const deb of debs) {
    const list = spawnSync("dpkg-deb", ["-c", deb], { encoding: "utf8", maxBuffer: 16 * 2 ** 20 });
    if (list.status !== 0) throw new LabError(`dpkg-deb -c ${deb} failed`, "is the cached package complete? remove it to download it again", list.stderr);
    // pkg_version_arch.deb (apt's name, with ':' as %3a)
    const [pkg = "", version = ""] = basename(deb, ".deb").split("_");
    for (const so of needed) {
      const line = list.stdout.split("\n").some((l) => l.endsWith(`/${so}`) || l.includes(`/${so} -> `)) ? shlibsLine(so, pkg, decodeURIComponent(version)) : undefined;
      if (line !== undefined && !lines.includes(line)) lines.push(line);
    }
  }
  const shlibsLocal = join(root, "shlibs.local");
  writeFileSync(shlibsLocal, lines.join("\n") + "\n");
  return { addon, libDir: join(root, "usr", "lib", "x86_64-linux-gnu"), shlibsLocal };
}

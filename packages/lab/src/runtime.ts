// The project's code reaches dom0 as a second initramfs archive appended to the cached base one,
// unpacked by the kernel at boot into /fastsuspend. Measured on the lab (TCG, 2 cores): through a
// 9p share each file lookup costs ~20 ms, so `require` of one package took 15-40 s; unpacking a
// tarball in dom0 took 2 min (file creation is slow under PV+TCG); the appended archive of the
// same 7,000 files added no measurable boot time. So the lab repacks, and a code change needs a
// reboot of the lab (~35-45 s), not a rebuild of the base initramfs.
import { existsSync, lstatSync, mkdirSync, readdirSync, rmSync, symlinkSync, copyFileSync, readlinkSync, createReadStream, createWriteStream } from "node:fs";
import { join, dirname } from "node:path";
import { pipeline } from "node:stream/promises";
import { writeInitramfs } from "./cpio";
import { sharedLibs } from "./elf";

/** node_modules entries dom0 never needs: build, lint and type tools. */
const SKIP_MODULES = /^(typescript|turbo|turbo-.*|@turbo|eslint|eslint-.*|@eslint|@eslint-community|@typescript-eslint|typescript-eslint|node-gyp|@types)$/;
/** Files dom0 never needs. */
const SKIP_FILES = /(\.d\.ts|\.map|\.md|\.markdown|LICENSE.*|CHANGELOG.*|\.tsbuildinfo)$/i;

function copyTree(src: string, dest: string, skipDir: (name: string, depth: number) => boolean, depth = 0): void {
  mkdirSync(dest, { recursive: true });
  for (const e of readdirSync(src, { withFileTypes: true })) {
    const s = join(src, e.name);
    const d = join(dest, e.name);
    if (e.isSymbolicLink()) symlinkSync(readlinkSync(s), d);
    else if (e.isDirectory()) {
      if (e.name === ".git" || e.name === ".turbo" || e.name === ".cache" || skipDir(e.name, depth)) continue;
      copyTree(s, d, skipDir, depth + 1);
    } else if (e.isFile() && !SKIP_FILES.test(e.name)) copyFileSync(s, d);
  }
}

export interface RuntimeArchiveOptions {
  /**
   * Copy the host libraries native addons need (default true: bookworm's dom0 is the host's
   * release). false for another stack: its dom0 image has its own glibc and libraries, which the
   * host's would overwrite (this archive is unpacked after the base image).
   */
  hostLibraries?: boolean;
  /** Files to put in place of the repo's, by path inside the repo (e.g. an addon built for the stack). */
  replace?: Record<string, string>;
}

/** Stages the repo's runtime files under staging/fastsuspend and writes them as an archive. */
export async function buildRuntimeArchive(repoDir: string, out: string, staging: string, opts: RuntimeArchiveOptions = {}): Promise<void> {
  rmSync(staging, { recursive: true, force: true });
  const root = join(staging, "fastsuspend");
  mkdirSync(root, { recursive: true });
  for (const f of ["package.json", "jest.base.cjs", "tsconfig.base.json"]) if (existsSync(join(repoDir, f))) copyFileSync(join(repoDir, f), join(root, f));
  copyTree(join(repoDir, "node_modules"), join(root, "node_modules"), (name, depth) => depth === 0 && SKIP_MODULES.test(name));
  const pkgs = join(repoDir, "packages");
  for (const p of readdirSync(pkgs)) {
    const src = join(pkgs, p);
    if (!lstatSync(src).isDirectory()) continue;
    // Sources too: Jest runs the TypeScript tests in dom0 through swc.
    copyTree(src, join(root, "packages", p), (name, depth) => depth === 0 && (name === "node_modules" || name === "test-results"));
    // node-gyp's intermediate objects are large and useless at run time.
    rmSync(join(root, "packages", p, "build", "Release", "obj.target"), { recursive: true, force: true });
  }
  for (const [inRepo, file] of Object.entries(opts.replace ?? {})) {
    mkdirSync(dirname(join(root, inRepo)), { recursive: true });
    copyFileSync(file, join(root, inRepo));
  }
  if (opts.hostLibraries ?? true) await addNativeLibraries(root, staging);
  await writeInitramfs(staging, out, 1);
}

/** Native addons (ours, swc's) may need host libraries the base dom0 image lacks (e.g. librt). */
async function addNativeLibraries(root: string, staging: string): Promise<void> {
  const addons: string[] = [];
  const find = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) find(p);
      else if (e.isFile() && e.name.endsWith(".node")) addons.push(p);
    }
  };
  find(root);
  const libs = new Set<string>();
  for (const a of addons) for (const l of await sharedLibs(a, [])) libs.add(l);
  for (const l of libs) {
    mkdirSync(join(staging, dirname(l)), { recursive: true });
    copyFileSync(l, join(staging, l));
  }
}

/** Concatenates gzip'd archives: the kernel unpacks them in order. */
export async function concatArchives(parts: string[], out: string): Promise<void> {
  mkdirSync(dirname(out), { recursive: true });
  const ws = createWriteStream(out);
  for (const p of parts) await pipeline(createReadStream(p), ws, { end: false });
  ws.end();
  await new Promise<void>((r) => ws.on("close", () => { r(); }));
}

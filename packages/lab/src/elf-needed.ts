// The shared libraries an ELF file needs, read from the file itself (PT_DYNAMIC's DT_NEEDED and
// DT_RUNPATH/DT_RPATH) and resolved in a directory tree, without running the host's ld.so: a
// stack's dom0 image (e.g. trixie's) carries its own glibc, newer than the host's, so `ldd` with
// LD_LIBRARY_PATH pointing into it would run the host's loader on another release's libc.
import { existsSync, readFileSync, realpathSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";

export interface ElfDynamic {
  /** PT_INTERP, e.g. /lib64/ld-linux-x86-64.so.2; undefined for a shared library or static binary. */
  interp?: string;
  needed: string[];
  runpath: string[];
}

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_INTERP = 3;
const DT_NULL = 0n;
const DT_NEEDED = 1n;
const DT_STRTAB = 5n;
const DT_RPATH = 15n;
const DT_RUNPATH = 29n;

/** undefined when data is not a little-endian ELF64 file (scripts, other formats). */
export function readElfDynamic(data: Buffer): ElfDynamic | undefined {
  if (data.length < 64 || data.readUInt32BE(0) !== 0x7f454c46 || data[4] !== 2 || data[5] !== 1) return undefined;
  const phoff = Number(data.readBigUInt64LE(32));
  const phentsize = data.readUInt16LE(54);
  const phnum = data.readUInt16LE(56);
  const loads: { vaddr: bigint; offset: bigint; filesz: bigint }[] = [];
  let dyn: { offset: number; size: number } | undefined;
  let interp: string | undefined;
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    const type = data.readUInt32LE(at);
    const offset = data.readBigUInt64LE(at + 8);
    const vaddr = data.readBigUInt64LE(at + 16);
    const filesz = data.readBigUInt64LE(at + 32);
    if (type === PT_LOAD) loads.push({ vaddr, offset, filesz });
    else if (type === PT_DYNAMIC) dyn = { offset: Number(offset), size: Number(filesz) };
    else if (type === PT_INTERP) interp = data.subarray(Number(offset), Number(offset + filesz)).toString("latin1").replace(/\0.*$/s, "");
  }
  const result: ElfDynamic = { interp, needed: [], runpath: [] };
  if (!dyn) return result;
  const entries: [bigint, bigint][] = [];
  for (let at = dyn.offset; at + 16 <= dyn.offset + dyn.size; at += 16) {
    const tag = data.readBigInt64LE(at);
    if (tag === DT_NULL) break;
    entries.push([tag, data.readBigUInt64LE(at + 8)]);
  }
  const strtabVaddr = entries.find(([t]) => t === DT_STRTAB)?.[1];
  if (strtabVaddr === undefined) return result;
  const seg = loads.find((l) => strtabVaddr >= l.vaddr && strtabVaddr < l.vaddr + l.filesz);
  if (!seg) throw new Error("ELF: DT_STRTAB is outside every PT_LOAD segment");
  const strtab = Number(strtabVaddr - seg.vaddr + seg.offset);
  const str = (off: bigint): string => {
    const start = strtab + Number(off);
    return data.subarray(start, data.indexOf(0, start)).toString("latin1");
  };
  for (const [tag, val] of entries) {
    if (tag === DT_NEEDED) result.needed.push(str(val));
    else if (tag === DT_RUNPATH || tag === DT_RPATH) result.runpath.push(...str(val).split(":").filter(Boolean));
  }
  return result;
}

/**
 * Every library `files` need, transitively, resolved inside root (a directory tree laid out like
 * the target system): RUNPATH first ($ORIGIN expanded), then libDirs (paths inside root).
 * Returns paths relative to root, as they will be seen on the target; `missing` names what no
 * directory has, with the file that needs it.
 */
export function resolveNeeded(root: string, files: string[], libDirs: string[]): { libs: string[]; interps: string[]; missing: string[] } {
  const libs = new Set<string>();
  const interps = new Set<string>();
  const missing: string[] = [];
  const seen = new Set<string>();
  const visit = (file: string): void => {
    const real = realpathSync(file);
    if (seen.has(real)) return;
    seen.add(real);
    if (!statSync(real).isFile()) return;
    const d = readElfDynamic(readFileSync(real));
    if (!d) return;
    if (d.interp) interps.add(d.interp);
    const rel = relative(root, file);
    const origin = dirname(rel.startsWith("..") ? file : join("/", rel));
    for (const name of d.needed) {
      const dirs = [...d.runpath.map((r) => r.replace(/\$\{?ORIGIN\}?/g, origin)), ...libDirs.map((l) => join("/", l))];
      const found = dirs.map((dir) => join(dir, name)).find((p) => existsSync(join(root, p)));
      if (!found) {
        missing.push(`${name} (needed by ${rel.startsWith("..") ? file : `/${rel}`})`);
        continue;
      }
      libs.add(found);
      visit(join(root, found));
    }
  };
  for (const f of files) visit(f);
  return { libs: [...libs].sort(), interps: [...interps].sort(), missing };
}

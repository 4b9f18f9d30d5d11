// Helpers for the binaries that go into the initramfs: their shared libraries and the
// kernel modules' dependencies, read from the files themselves.
import { readFileSync } from "node:fs";
import { run } from "./run";

/** Absolute paths of the shared libraries a binary needs, searched in libDirs first. */
export async function sharedLibs(binary: string, libDirs: string[]): Promise<string[]> {
  const r = await run(["ldd", binary], { env: { ...process.env, LD_LIBRARY_PATH: libDirs.join(":") } });
  if (r.code !== 0) return []; // scripts and static binaries
  const libs: string[] = [];
  for (const line of r.stdout.split("\n")) {
    const m = /=>\s+(\/\S+)/.exec(line) ?? /^\s+(\/\S+)\s+\(/.exec(line);
    if (m?.[1]) libs.push(m[1]);
    else if (/not found/.test(line)) throw new Error(`${binary}: ${line.trim()}`);
  }
  return libs;
}

/** The `depends=` entry of a kernel module's .modinfo section. */
export function moduleDepends(ko: string): string[] {
  const data = readFileSync(ko);
  const at = data.indexOf("depends=");
  if (at < 0) return [];
  const end = data.indexOf(0, at);
  const list = data.subarray(at + "depends=".length, end).toString();
  return list ? list.split(",") : [];
}

/**
 * The uncompressed kernel inside a bzImage: Xen decompresses a dom0 kernel itself, slowly under
 * TCG, so the lab hands it the vmlinux ELF. Debian compresses with xz.
 */
export async function extractVmlinux(bzImage: string): Promise<Buffer> {
  const data = readFileSync(bzImage);
  const at = data.indexOf(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]));
  if (at < 0) throw new Error(`${bzImage}: no xz payload found`);
  const out: Buffer[] = [];
  const { spawn } = await import("node:child_process");
  return new Promise((resolve, reject) => {
    const xz = spawn("xz", ["-dc", "--single-stream"], { stdio: ["pipe", "pipe", "inherit"] });
    xz.stdout.on("data", (b: Buffer) => out.push(b));
    xz.on("error", reject);
    xz.on("close", () => {
      const elf = Buffer.concat(out);
      if (elf.subarray(0, 4).toString("latin1") !== "\x7fELF") reject(new Error(`${bzImage}: payload is not an ELF`));
      else resolve(elf);
    });
    xz.stdin.on("error", () => undefined); // xz stops reading after the stream: EPIPE is expected
    xz.stdin.end(data.subarray(at));
  });
}

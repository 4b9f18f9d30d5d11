// Debian packages: the lab is built only from pinned bookworm packages, downloaded with
// `apt-get download` and unpacked with `dpkg-deb -x` (nothing is installed on the host for the lab).
import { existsSync, mkdirSync, readdirSync, statfsSync } from "node:fs";
import { join } from "node:path";
import { LabError } from "./errors";
import { run } from "./run";

/** apt's file name for a package version: the epoch's colon is escaped as %3a. */
export function debFileName(pkg: string, version: string, arch = "amd64"): string {
  return `${pkg}_${version.replace(":", "%3a")}_${arch}.deb`;
}

let updated = false;

async function aptUpdate(): Promise<void> {
  if (updated) return;
  const r = await run(["apt-get", "update"], { timeoutMs: 300_000 });
  if (r.code !== 0) {
    throw new LabError("apt-get update failed: Debian's registry is unreachable", "check the network and /etc/apt/sources.list.d, then retry", r.stderr.slice(-1500));
  }
  updated = true;
}

/** Downloads each pinned package into dir unless already there; returns the .deb paths. */
export async function downloadPinned(pins: Record<string, string>, dir: string): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  assertDiskSpace(dir, 1024);
  const wanted = Object.entries(pins).map(([pkg, ver]) => ({ pkg, ver, file: join(dir, debFileName(pkg, ver)) }));
  const missing = wanted.filter((w) => !existsSync(w.file));
  if (missing.length > 0) {
    const argv = ["apt-get", "download", ...missing.map((m) => `${m.pkg}=${m.ver}`)];
    let r = await run(argv, { cwd: dir, timeoutMs: 600_000 });
    if (r.code !== 0 && /Unable to locate|Version .* was not found|Can't find a source/.test(r.stderr)) {
      await aptUpdate();
      r = await run(argv, { cwd: dir, timeoutMs: 600_000 });
    }
    if (r.code !== 0) {
      const gone = /Version '([^']+)' for '([^']+)' was not found/.exec(r.stderr);
      throw new LabError(
        gone ? `Debian no longer serves ${gone[2]}=${gone[1]}` : "apt-get download failed",
        gone ? "update packages/lab/pins.json to the versions `apt-cache policy` shows" : "check that Debian's registry is reachable (apt-get update)",
        r.stderr.slice(-1500),
      );
    }
  }
  for (const w of wanted) {
    if (!existsSync(w.file)) throw new LabError(`apt-get did not produce ${w.file}`, "run apt-get update and retry", readdirSync(dir).join("\n"));
  }
  return wanted.map((w) => w.file);
}

/** Installs host packages (QEMU, libxen-dev) when a command they provide is missing. */
export async function ensureHostPackages(packages: string[]): Promise<void> {
  const r = await run(["dpkg-query", "-W", "-f=${Package} ${Status}\n", ...packages]);
  const installed = new Set(
    r.stdout
      .split("\n")
      .filter((l) => l.endsWith("install ok installed"))
      .map((l) => l.split(" ")[0]),
  );
  const missing = packages.filter((p) => !installed.has(p));
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) {
    throw new LabError(`missing host packages: ${missing.join(", ")}`, `run as root, or: apt-get install ${missing.join(" ")}`);
  }
  await aptUpdate();
  const inst = await run(["apt-get", "install", "-y", "--no-install-recommends", ...missing], {
    timeoutMs: 900_000,
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
  });
  if (inst.code !== 0) throw new LabError(`apt-get install ${missing.join(" ")} failed`, "check Debian's registry (apt-get update) and disk space", inst.stderr.slice(-1500));
}

/** Fails early and clearly when the cache's disk is nearly full. */
export function assertDiskSpace(dir: string, needMiB: number): void {
  const s = statfsSync(dir);
  const freeMiB = (s.bavail * s.bsize) / 2 ** 20;
  if (freeMiB < needMiB) {
    throw new LabError(`only ${freeMiB.toFixed(0)} MiB free at ${dir}, the lab needs ~${needMiB} MiB`, "free disk space or point FASTSUSPEND_CACHE at a larger disk");
  }
}

export async function extractDeb(deb: string, into: string): Promise<void> {
  const r = await run(["dpkg-deb", "-x", deb, into], { timeoutMs: 300_000 });
  if (r.code !== 0) throw new LabError(`dpkg-deb -x ${deb} failed`, "delete the file from the cache and retry", r.stderr);
}

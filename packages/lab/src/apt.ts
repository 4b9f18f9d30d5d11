// Debian packages: the lab is built only from pinned bookworm packages, downloaded with
// `apt-get download` and unpacked with `dpkg-deb -x` (nothing is installed on the host for the lab).
import { existsSync, mkdirSync, readdirSync, renameSync, statfsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { LabError } from "./errors";
import { cacheDir } from "./paths";
import { run } from "./run";

/** apt's file name for a package version: the epoch's colon is escaped as %3a. */
export function debFileName(pkg: string, version: string, arch = "amd64"): string {
  return `${pkg}_${version.replace(":", "%3a")}_${arch}.deb`;
}

let updated = false;
const updatedConfigs = new Set<string>();

async function aptUpdate(apt?: AptConfig): Promise<void> {
  if (apt) {
    if (updatedConfigs.has(apt.dir)) return;
    const r = await run(["apt-get", ...apt.options, "update"], { timeoutMs: 300_000 });
    if (r.code !== 0) {
      throw new LabError(`apt-get update of the project's ${apt.suite} configuration (${apt.dir}) failed`, "check the network; to start afresh, remove its state/lists", r.stderr.slice(-1500));
    }
    updatedConfigs.add(apt.dir);
    return;
  }
  if (updated) return;
  const r = await run(["apt-get", "update"], { timeoutMs: 300_000 });
  if (r.code !== 0) {
    throw new LabError("apt-get update failed: Debian's registry is unreachable", "check the network and /etc/apt/sources.list.d, then retry", r.stderr.slice(-1500));
  }
  updated = true;
}

/**
 * An apt configuration of the project's own for a Debian release other than the host's: its own
 * sources.list, lists, archives and an empty dpkg status under $CACHE/apt-<suite>, passed to
 * apt-get with -o, so the host's /etc/apt and dpkg state are only read (apt.conf.d, e.g. a proxy),
 * never written. The same layout as kernel/build.sh --base 6.12's $CACHE/apt-trixie (they share it).
 */
export interface AptConfig {
  suite: string;
  dir: string;
  options: string[];
}

export function projectAptOptions(dir: string): string[] {
  return [
    "-o", `Dir::Etc::SourceList=${dir}/sources.list`,
    "-o", `Dir::Etc::SourceParts=${dir}/sources.list.d`,
    "-o", `Dir::Etc::Preferences=${dir}/preferences`,
    "-o", `Dir::Etc::PreferencesParts=${dir}/preferences.d`,
    "-o", `Dir::State=${dir}/state`,
    "-o", `Dir::State::Lists=${dir}/state/lists`,
    "-o", `Dir::State::status=${dir}/state/status`,
    "-o", `Dir::Cache=${dir}/cache`,
    "-o", "APT::Sandbox::User=root",
  ];
}

/** Makes (once) the project's apt configuration for suite (trixie + trixie-security, main). */
export function ensureProjectApt(suite: string): AptConfig {
  const dir = join(cacheDir(), `apt-${suite}`);
  const keyring = "/usr/share/keyrings/debian-archive-keyring.gpg";
  for (const d of ["sources.list.d", "preferences.d", "state/lists/partial", "cache/archives/partial"]) mkdirSync(join(dir, d), { recursive: true });
  if (!existsSync(join(dir, "state/status"))) writeFileSync(join(dir, "state/status"), "");
  if (!existsSync(join(dir, "sources.list"))) {
    if (!existsSync(keyring)) throw new LabError(`no ${keyring}`, "apt-get install debian-archive-keyring");
    writeFileSync(join(dir, "sources.list.tmp"), [
      `# written by fastsuspend's lab (--stack ${suite}); used only through -o Dir::... options, never by the host's apt`,
      `deb [signed-by=${keyring}] http://deb.debian.org/debian ${suite} main`,
      `deb [signed-by=${keyring}] http://deb.debian.org/debian-security ${suite}-security main`,
      "",
    ].join("\n"));
    renameSync(join(dir, "sources.list.tmp"), join(dir, "sources.list"));
  }
  return { suite, dir, options: projectAptOptions(dir) };
}

/**
 * Downloads each pinned package into dir unless already there; returns the .deb paths. With apt,
 * through that configuration (another release's packages); without, the host's (bookworm).
 */
export async function downloadPinned(pins: Record<string, string>, dir: string, apt?: AptConfig): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  assertDiskSpace(dir, 1024);
  const wanted = Object.entries(pins).map(([pkg, ver]) => ({ pkg, ver, file: join(dir, debFileName(pkg, ver)) }));
  const missing = wanted.filter((w) => !existsSync(w.file));
  if (missing.length > 0) {
    const argv = ["apt-get", ...(apt?.options ?? []), "download", ...missing.map((m) => `${m.pkg}=${m.ver}`)];
    let r = await run(argv, { cwd: dir, timeoutMs: 600_000 });
    if (r.code !== 0 && /Unable to locate|Version .* was not found|Can't find a source/.test(r.stderr)) {
      await aptUpdate(apt);
      r = await run(argv, { cwd: dir, timeoutMs: 600_000 });
    }
    if (r.code !== 0) {
      const gone = /Version '([^']+)' for '([^']+)' was not found/.exec(r.stderr);
      throw new LabError(
        gone ? `Debian no longer serves ${gone[2]}=${gone[1]}` : "apt-get download failed",
        gone
          ? apt ? `update packages/lab/pins-${apt.suite}.json to the versions \`apt-cache ${apt.options.join(" ")} policy\` shows` : "update packages/lab/pins.json to the versions `apt-cache policy` shows"
          : "check that Debian's registry is reachable (apt-get update)",
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

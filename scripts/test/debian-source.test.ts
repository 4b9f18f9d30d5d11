// scripts/debian-source.sh: a Debian source package fetched through the project's own apt
// configuration. Session 18: on a fresh machine (debian.sources with `Types: deb` only) the patched
// QEMU's build ran the host's `apt-get source` and failed, and `npm run bench` never reached a lab.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const SCRIPT = join(__dirname, "..", "debian-source.sh");

function run(args: string[], cache: string): { code: number | null; out: string; err: string } {
  const r = spawnSync("bash", [SCRIPT, ...args], { encoding: "utf8", timeout: 120_000, env: { ...process.env, FASTSUSPEND_CACHE: cache } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe("debian-source.sh", () => {
  let dir: string;
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), "fs-debsrc-")); });
  afterEach(() => { rmSync(dir, { recursive: true, force: true }); });

  it("refuses what is not DIST PKG=VERSION DESTDIR, before touching apt", () => {
    const sid = run(["sid", "hello=2.10-3", dir], join(dir, "c"));
    expect(sid.code).toBe(2);
    expect(sid.err).toContain("unknown Debian release 'sid'");
    const noVersion = run(["bookworm", "hello", dir], join(dir, "c"));
    expect(noVersion.code).toBe(2);
    expect(noVersion.err).toContain("'hello' is not PKG=VERSION");
    expect(run(["bookworm"], join(dir, "c")).code).toBe(2);
    expect(existsSync(join(dir, "c"))).toBe(false);
  });

  it("downloads a bookworm source package with the host's apt configuration untouched, and prints its .dsc", () => {
    const hostLists = readdirSync("/etc/apt/sources.list.d").sort();
    const r = run(["bookworm", "hello=2.10-3", join(dir, "src")], join(dir, "c"));
    expect(r).toMatchObject({ code: 0, out: `${join(dir, "src", "hello_2.10-3.dsc")}\n` });
    expect(existsSync(join(dir, "src", "hello_2.10.orig.tar.gz"))).toBe(true);
    // Its lists are the project's, under the cache; the host's apt gained nothing.
    expect(readdirSync(join(dir, "c", "apt-bookworm-src", "state", "lists")).some((f) => f.includes("bookworm_main_source_Sources"))).toBe(true);
    expect(readdirSync("/etc/apt/sources.list.d").sort()).toEqual(hostLists);
  });

  it("says so when the version is not in the archive", () => {
    const r = run(["bookworm", "hello=0.0-0", join(dir, "src")], join(dir, "c"));
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/hello/);
  });
});

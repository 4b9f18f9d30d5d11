// The Debian package: scripts/build-deb.mjs stages this tree's built dist/ (run
// `npx turbo run build` first) next to debian/ and runs dpkg-buildpackage; the .deb is then read
// back with dpkg-deb, lintian and systemd-analyze. Needs dpkg-dev, debhelper, lintian and systemd,
// which scripts/bootstrap.mjs installs (HOST_PACKAGES), so CI runs it; elsewhere it is skipped and
// says what is missing.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";

const pkgDir = join(__dirname, "..");
const repo = join(pkgDir, "..", "..");
const version = (JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8")) as { version: string }).version;

const have = (tool: string): boolean => spawnSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" }).status === 0;
const missing = ["dpkg-buildpackage", "dh", "lintian", "systemd-analyze", "readelf"].filter((t) => !have(t));

function run(cmd: string, args: string[], opts: { cwd?: string } = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: "utf8", maxBuffer: 64 * 1024 * 1024, ...opts });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function must(cmd: string, args: string[], opts: { cwd?: string } = {}): string {
  const r = run(cmd, args, opts);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: exit ${String(r.status)}\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

(missing.length === 0 ? describe : describe.skip)(`the .deb (dpkg-buildpackage)${missing.length === 0 ? "" : ` (skipped: ${missing.join(", ")} not installed; scripts/bootstrap.mjs installs them)`}`, () => {
  let out: string | undefined;
  let deb: string;
  let built: string;
  let root: string;
  let files: string[];

  beforeAll(() => {
    const dir = mkdtempSync(join(tmpdir(), "fastsuspend-deb-"));
    out = dir;
    built = must("node", [join(pkgDir, "scripts", "build-deb.mjs"), "--out", dir]);
    deb = join(dir, `fastsuspend_${version}_amd64.deb`);
    root = join(dir, "root");
    must("dpkg-deb", ["-x", deb, root]);
    // "-rw-r--r-- root/root 415 2026-12-02 13:10 ./etc/default/fastsuspendd" → "etc/default/fastsuspendd"
    files = must("dpkg-deb", ["-c", deb])
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => l.replace(/^.*? \.\//, "").replace(/ -> .*$/, ""));
  }, 5 * 60_000);

  afterAll(() => {
    if (out !== undefined) rmSync(out, { recursive: true, force: true });
  });

  it("is built where --out says, and its path is printed", () => {
    expect(built.trim()).toMatch(new RegExp(`^${deb.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} \\(\\d+ KiB\\)$`));
    expect(existsSync(deb)).toBe(true);
    // Nothing left of the staging directory or dpkg-buildpackage's other outputs.
    expect(readdirSync(out ?? "").sort()).toEqual([`fastsuspend_${version}_amd64.deb`, "root"]);
  });

  it("control: version from debian/changelog = package.json, nodejs as engines says, the Xen libraries from dpkg-shlibdeps", () => {
    const field = (f: string): string => must("dpkg-deb", ["-f", deb, f]).trim();
    expect(field("Package")).toBe("fastsuspend");
    expect(field("Version")).toBe(version);
    expect(field("Architecture")).toBe("amd64");
    const depends = field("Depends")
      .split(",")
      .map((d) => d.trim());
    const names = depends.map((d) => d.split(/[ (]/)[0]);
    const engines = (JSON.parse(readFileSync(join(repo, "package.json"), "utf8")) as { engines: { node: string } }).engines.node;
    expect(engines).toMatch(/^>=\d+$/);
    expect(depends).toContain(`nodejs (>= ${engines.slice(2)})`);
    // Every library the shipped addon names in DT_NEEDED, mapped to its Debian package here
    // (dpkg -S), must be a dependency: what dpkg-shlibdeps is for.
    const addon = join(root, "usr/lib/fastsuspend/node_modules/@fastsuspend/xen/build/Release/xen.node");
    const needed = [...must("readelf", ["-d", addon]).matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1] ?? "");
    expect(needed).toEqual(expect.arrayContaining(["libxenctrl.so.4.17", "libxenevtchn.so.1", "libxencall.so.1"]));
    const ldconfig = must("ldconfig", ["-p"]);
    for (const soname of needed) {
      if (soname.startsWith("ld-linux")) continue; // libc6's
      const path = new RegExp(`^\\s*${soname.replace(/[.+]/g, "\\$&")} \\(libc6,x86-64\\) => (\\S+)$`, "m").exec(ldconfig)?.[1];
      expect([soname, path]).toEqual([soname, expect.any(String)]);
      // dpkg -S wants the path dpkg installed it under (/lib or /usr/lib with merged /usr).
      const owner = [path ?? "", (path ?? "").replace(/^\/usr\/lib\//, "/lib/"), (path ?? "").replace(/^\/lib\//, "/usr/lib/")]
        .map((p) => run("dpkg", ["-S", p]))
        .find((r) => r.status === 0);
      const pkg = owner?.stdout.split(":")[0] ?? `(no package owns ${soname})`;
      expect([soname, names]).toEqual([soname, expect.arrayContaining([pkg])]);
    }
    expect(names).toEqual(expect.arrayContaining(["libxenmisc4.17", "libxenevtchn1", "libxencall1", "libc6"]));
    // libxentoollog1 comes in only if the addon links it itself (it uses its types, not its code).
    expect(names.includes("libxentoollog1")).toBe(needed.includes("libxentoollog.so.1"));
  });

  it("contents: the two commands, the runtime packages, the unit, /etc/default, man pages, copyright, changelog, md5sums; no lab, bench or test code", () => {
    expect(files).toEqual(
      expect.arrayContaining([
        "usr/bin/fastsuspend",
        "usr/sbin/fastsuspendd",
        "lib/systemd/system/fastsuspendd.service",
        "etc/default/fastsuspendd",
        "usr/share/man/man1/fastsuspend.1.gz",
        "usr/share/man/man8/fastsuspendd.8.gz",
        "usr/share/doc/fastsuspend/copyright",
        "usr/share/doc/fastsuspend/changelog.gz",
        "usr/share/doc/fastsuspend/examples/metrics-listen.conf",
        "usr/lib/fastsuspend/node_modules/@fastsuspend/xen/build/Release/xen.node",
        ...["xen", "xenstore", "coordinator", "daemon", "cli"].map((p) => `usr/lib/fastsuspend/node_modules/@fastsuspend/${p}/dist/index.js`),
      ]),
    );
    const offending = files.filter(
      (f) =>
        /@fastsuspend\/(lab|bench)\//.test(f) ||
        /\/(testing|lab-probes|test|__tests__)\//.test(f) ||
        /\.(test|lab\.test)\.js$/.test(f) ||
        /\.(map|ts)$/.test(f) ||
        /\/dist\/bench\//.test(f),
    );
    expect(offending).toEqual([]);
    // md5sums covers every regular file but the conffile, which conffiles lists.
    const md5 = must("dpkg-deb", ["-I", deb, "md5sums"]);
    for (const f of ["usr/sbin/fastsuspendd", "usr/bin/fastsuspend", "lib/systemd/system/fastsuspendd.service", "usr/lib/fastsuspend/node_modules/@fastsuspend/xen/build/Release/xen.node"]) {
      expect(md5).toMatch(new RegExp(`^[0-9a-f]{32}  ${f.replace(/[.@/]/g, "\\$&")}$`, "m"));
    }
    expect(must("dpkg-deb", ["-I", deb, "conffiles"]).trim()).toBe("/etc/default/fastsuspendd");
  });

  it("maintainer scripts from dh_installsystemd: enable unless disabled, restart on upgrade, stop on remove", () => {
    const postinst = must("dpkg-deb", ["-I", deb, "postinst"]);
    expect(postinst).toMatch(/deb-systemd-helper --quiet was-enabled 'fastsuspendd\.service'/);
    expect(postinst).toMatch(/deb-systemd-helper enable 'fastsuspendd\.service'/);
    // restart when upgrading ($2 = the old version), start on a first install; deb-systemd-invoke honours policy-rc.d.
    expect(postinst).toMatch(/_dh_action=restart/);
    expect(postinst).toMatch(/deb-systemd-invoke \$_dh_action 'fastsuspendd\.service'/);
    const prerm = must("dpkg-deb", ["-I", deb, "prerm"]);
    expect(prerm).toMatch(/"\$1" = remove .*\n\s*deb-systemd-invoke stop 'fastsuspendd\.service'/);
  });

  it("lintian: no errors", () => {
    const r = run("lintian", ["--pedantic", "-I", "--no-tag-display-limit", deb]);
    const tags = r.stdout.split("\n").filter((l) => /^[EWIPXO]: /.test(l));
    console.log(`lintian: ${tags.length === 0 ? "no tags" : tags.join("\n")}`);
    expect(tags.filter((t) => t.startsWith("E: "))).toEqual([]);
    expect(r.status).toBe(0);
  }, 3 * 60_000);

  it("is self-contained: each runtime package loads from the unpacked tree, the commands answer", () => {
    const lib = join(root, "usr/lib/fastsuspend/node_modules/@fastsuspend");
    for (const p of ["xen", "xenstore", "coordinator", "daemon", "cli"]) {
      must("node", ["-e", `require(${JSON.stringify(join(lib, p))})`], { cwd: tmpdir() });
    }
    expect(must("node", [join(lib, "cli/dist/main.js"), "--version"], { cwd: tmpdir() }).trim()).toBe(`fastsuspend ${version}`);
    expect(must("node", [join(lib, "daemon/dist/main.js"), "--help"], { cwd: tmpdir() })).toMatch(/^usage: fastsuspendd /);
    // The wrappers run the same files from /usr/lib/fastsuspend.
    expect(readFileSync(join(root, "usr/sbin/fastsuspendd"), "utf8")).toContain('exec node /usr/lib/fastsuspend/node_modules/@fastsuspend/daemon/dist/main.js "$@"');
    expect(readFileSync(join(root, "usr/bin/fastsuspend"), "utf8")).toContain('exec node /usr/lib/fastsuspend/node_modules/@fastsuspend/cli/dist/main.js "$@"');
  });

  it("the man pages document every command and option the shipped commands list", () => {
    const man = (p: string): string => gunzipSync(readFileSync(join(root, p))).toString("utf8").replace(/\\-/g, "-");
    const lib = join(root, "usr/lib/fastsuspend/node_modules/@fastsuspend");
    const flags = (usage: string): string[] => [...new Set([...usage.matchAll(/(?<![\w-])--[a-z][a-z-]*/g)].map((m) => m[0]))];
    const mentions = (text: string, flag: string): boolean => new RegExp(`(?<![\\w-])${flag}(?![\\w-])`).test(text);
    const daemonMan = man("usr/share/man/man8/fastsuspendd.8.gz");
    const daemonHelp = must("node", [join(lib, "daemon/dist/main.js"), "--help"], { cwd: tmpdir() });
    expect(flags(daemonHelp).filter((f) => !mentions(daemonMan, f))).toEqual([]);
    const cliMan = man("usr/share/man/man1/fastsuspend.1.gz");
    const cli = (args: string[]): string => must("node", [join(lib, "cli/dist/main.js"), ...args], { cwd: tmpdir() });
    const commands = [...cli(["help"]).matchAll(/^ {2}([a-z][a-z-]*) /gm)].map((m) => m[1] ?? "");
    expect(commands.length).toBeGreaterThanOrEqual(5);
    const undocumented: string[] = [];
    for (const c of commands) {
      // Each command is a .TP entry of COMMANDS: ".TP\n.BI suspend ...".
      if (!new RegExp(`^\\.TP\\n\\.B[IR]? ${c} `, "m").test(cliMan)) undocumented.push(c);
      for (const f of flags(cli(["help", c]))) if (!mentions(cliMan, f)) undocumented.push(`${c} ${f}`);
    }
    expect(undocumented).toEqual([]);
  });

  it("the unit: Type=notify, /etc/default, hardened (systemd-analyze security exposure at most 2.0)", () => {
    const unitPath = join(root, "lib/systemd/system/fastsuspendd.service");
    const unit = readFileSync(unitPath, "utf8");
    for (const line of ["Type=notify", "EnvironmentFile=-/etc/default/fastsuspendd", "ExecStart=/usr/sbin/fastsuspendd $FASTSUSPENDD_OPTS", "ProtectSystem=strict", "DevicePolicy=closed", "RestrictAddressFamilies=AF_UNIX"]) {
      expect(unit.split("\n")).toContain(line);
    }
    // V8's JIT needs writable+executable memory; the /proc scan needs other processes' /proc/PID.
    expect(unit).not.toMatch(/^(MemoryDenyWriteExecute=yes|ProtectProc=invisible|ProcSubset=pid|PrivateDevices=yes)/m);
    const r = run("systemd-analyze", ["security", "--offline=yes", unitPath]);
    const level = /Overall exposure level for fastsuspendd\.service: (\d+\.\d+)/.exec(r.stdout)?.[1];
    console.log(`systemd-analyze security: ${level ?? `no score: ${r.stdout.slice(-500)}${r.stderr}`}`);
    expect(Number(level)).toBeLessThanOrEqual(2.0);
  });
});

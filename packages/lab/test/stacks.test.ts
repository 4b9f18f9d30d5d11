// Stacks off the lab: the per-stack pins, the ELF reader that resolves dom0's libraries inside a
// stack's own tree, the trixie dom0 init, and that bookworm's path is the one it was.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { projectAptOptions } from "../src/apt";
import { artefactKey } from "../src/artefacts";
import { readElfDynamic, resolveNeeded } from "../src/elf-needed";
import { pinsFile } from "../src/paths";
import { DEFAULT_STACK, STACKS, loadPins, loadStackPins, parseStack, stackPinsFile } from "../src/pins";
import { stackArtefactDir, stackArtefactKey, stackDom0Init, sysrootPackages } from "../src/stack-artefacts";

describe("stacks", () => {
  it("default to bookworm, know trixie, refuse anything else", () => {
    expect(STACKS).toEqual(["bookworm", "trixie"]);
    expect(DEFAULT_STACK).toBe("bookworm");
    expect(parseStack(undefined)).toBe("bookworm");
    expect(parseStack("")).toBe("bookworm");
    expect(parseStack("trixie")).toBe("trixie");
    expect(() => parseStack("sid")).toThrow(/unknown stack "sid" \(known: bookworm, trixie\)/);
  });

  it("keep bookworm's pins in pins.json, as before stacks", () => {
    expect(stackPinsFile("bookworm")).toBe(pinsFile);
    const p = loadPins();
    expect(p.suite).toBe("bookworm");
    expect(p.packages["xen-hypervisor-4.17-amd64"]).toBeDefined();
  });

  it("pin trixie's Xen 4.20, its dom0 kernel, and glibc from trixie itself", () => {
    const p = loadStackPins("trixie");
    expect(p.suite).toBe("trixie");
    expect(p.apt).toBe("trixie");
    expect(p.xen).toBe("4.20");
    expect(p.packages["xen-hypervisor-4.20-amd64"]).toMatch(/^4\.20\.4\+/);
    expect(p.packages["xen-utils-4.20"]).toBe(p.packages["xen-hypervisor-4.20-amd64"]);
    expect(p.packages["libxenmisc4.20"]).toBe(p.packages["xen-hypervisor-4.20-amd64"]);
    expect(p.packages[`linux-image-${p.dom0Kernel}`]).toMatch(/^6\.12\./);
    expect(p.packages.libc6).toMatch(/^2\.(3[89]|[4-9]\d)/); // xen-utils-4.20: libc6 (>= 2.38)
    expect(p.sysrootPackages["libxen-dev"]).toBe(p.packages["xen-hypervisor-4.20-amd64"]);
    for (const v of Object.values(p.packages)) expect(v).not.toMatch(/deb12/); // nothing from bookworm
  });

  it("key trixie's artefacts apart from bookworm's, under lab/trixie-<key>", () => {
    const k = stackArtefactKey("trixie");
    expect(k).toMatch(/^[0-9a-f]{16}$/);
    expect(k).not.toBe(artefactKey());
    expect(stackArtefactDir("trixie")).toMatch(new RegExp(`/lab/trixie-${k}$`));
  });

  it("run trixie's dom0 with Xen 4.20's tools on PATH, the rest of the init unchanged", () => {
    const bookworm = readFileSync(join(__dirname, "..", "assets", "dom0-init.sh"), "utf8");
    const trixie = stackDom0Init("4.20");
    expect(trixie).toContain("export PATH=/usr/lib/xen-4.20/bin:");
    expect(trixie).not.toContain("xen-4.17");
    expect(trixie.replaceAll("xen-4.20", "xen-4.17")).toBe(bookworm);
  });

  it("build trixie's addon against trixie's libxen-dev and Xen libraries, with the host's glibc and libstdc++", () => {
    const p = loadStackPins("trixie");
    const s = sysrootPackages(p);
    expect(s["libxen-dev"]).toBe(p.sysrootPackages["libxen-dev"]);
    expect(s["libxenmisc4.20"]).toBe(p.packages["libxenmisc4.20"]); // libxenctrl.so.4.20
    expect(s).not.toHaveProperty("libc6");
    expect(s).not.toHaveProperty("libstdc++6");
    expect(s).not.toHaveProperty("xen-utils-4.20");
    expect(s).not.toHaveProperty(`linux-image-${p.dom0Kernel}`);
  });

  it("pass the project's apt configuration with -o, never the host's /etc/apt", () => {
    const o = projectAptOptions("/c/apt-trixie");
    expect(o.filter((a) => a !== "-o").every((a) => a.includes("/c/apt-trixie") || a === "APT::Sandbox::User=root")).toBe(true);
    expect(o).toContain("Dir::State::status=/c/apt-trixie/state/status");
    expect(o.join(" ")).not.toContain("/etc/apt");
  });
});

describe("ELF libraries resolved inside a tree", () => {
  let root: string;
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), "fs-elf-"));
  });
  afterAll(() => {
    rmSync(root, { recursive: true, force: true });
  });

  it("reads node's interpreter and DT_NEEDED entries", () => {
    const d = readElfDynamic(readFileSync(process.execPath));
    expect(d?.interp).toBe("/lib64/ld-linux-x86-64.so.2");
    expect(d?.needed).toEqual(expect.arrayContaining(["libc.so.6", "libstdc++.so.6"]));
  });

  it("is not fooled by scripts", () => {
    expect(readElfDynamic(Buffer.from("#!/bin/sh\necho hi\n"))).toBeUndefined();
  });

  it("resolves a binary's libraries transitively in the tree only, and names what is missing", () => {
    mkdirSync(join(root, "usr/bin"), { recursive: true });
    mkdirSync(join(root, "usr/lib/x86_64-linux-gnu"), { recursive: true });
    copyFileSync(process.execPath, join(root, "usr/bin/node"));
    // Only libstdc++ is in the tree: its own needs (libm, libc, libgcc_s) are found missing, not taken from the host.
    copyFileSync("/usr/lib/x86_64-linux-gnu/libstdc++.so.6", join(root, "usr/lib/x86_64-linux-gnu/libstdc++.so.6"));
    const r = resolveNeeded(root, [join(root, "usr/bin/node")], ["usr/lib/x86_64-linux-gnu"]);
    expect(r.libs).toEqual(["/usr/lib/x86_64-linux-gnu/libstdc++.so.6"]);
    expect(r.interps).toEqual(["/lib64/ld-linux-x86-64.so.2"]);
    expect(r.missing).toEqual(expect.arrayContaining(["libc.so.6 (needed by /usr/bin/node)", "libc.so.6 (needed by /usr/lib/x86_64-linux-gnu/libstdc++.so.6)"]));
    for (const lib of ["libc.so.6", "libm.so.6", "libgcc_s.so.1", "libdl.so.2", "libpthread.so.0", "ld-linux-x86-64.so.2"]) {
      copyFileSync(`/usr/lib/x86_64-linux-gnu/${lib}`, join(root, "usr/lib/x86_64-linux-gnu", lib));
    }
    const all = resolveNeeded(root, [join(root, "usr/bin/node")], ["usr/lib/x86_64-linux-gnu"]);
    expect(all.missing).toEqual([]);
    expect(all.libs).toContain("/usr/lib/x86_64-linux-gnu/libc.so.6");
  });
});

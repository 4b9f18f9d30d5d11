// The per-stack facts the lab tests check against, each compared with the file that decides it:
// the pins, kernel/build.sh, hypervisor-patches/build.sh and the hypervisor series' first patch.
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { LabError } from "../src/errors";
import { repoDir } from "../src/paths";
import { STACKS, loadPins, loadStackPins } from "../src/pins";
import { stackFacts, stackFromEnv } from "../src/stack-facts";

const repoFile = (...p: string[]): string => readFileSync(join(repoDir, ...p), "utf8");

/** A `case` arm of a build script: the text between `<label>)` and its `;;`. */
function caseArm(script: string, label: string): string {
  const m = new RegExp(`^${label.replace(/\./g, "\\.")}\\)\\n([\\s\\S]*?);;`, "m").exec(script);
  if (!m?.[1]) throw new Error(`no "${label})" arm in the script`);
  return m[1];
}
const assigned = (text: string, name: string): string => {
  const m = new RegExp(`^\\s*${name}=(\\S+)`, "m").exec(text);
  if (!m?.[1]) throw new Error(`no ${name}= in ${text}`);
  return m[1];
};
/** The value after `--base` in a script's arguments, or the script's default base. */
const baseOf = (args: readonly string[], script: string, defaultVar: string): string =>
  args[0] === "--base" && args[1] !== undefined ? args[1] : assigned(script, defaultVar);

describe("stackFacts", () => {
  it("has one entry per stack, bookworm's build arguments the scripts' defaults", () => {
    for (const s of STACKS) expect(stackFacts(s).stack).toBe(s);
    expect(stackFacts("bookworm")).toMatchObject({ xen: "4.17", linux: "6.1", domctlInterfaceVersion: 0x15, kernelBuildArgs: [], hypervisorBuildArgs: [] });
    expect(stackFacts("trixie")).toMatchObject({ xen: "4.20", linux: "6.12", domctlInterfaceVersion: 0x17 });
  });

  it("names the Xen and tools the stack's pins hold", () => {
    const pins = { bookworm: loadPins(), trixie: loadStackPins("trixie") };
    expect(pins.trixie.xen).toBe(stackFacts("trixie").xen);
    for (const s of STACKS) {
      const f = stackFacts(s);
      expect(pins[s].packages[`xen-hypervisor-${f.xen}-amd64`]).toBe(f.toolsPackageVersion);
      expect(pins[s].packages[`xen-utils-${f.xen}`]).toBe(f.toolsPackageVersion);
      expect(f.toolsPackageVersion.startsWith(`${f.toolsVersion}+`)).toBe(true);
      expect(f.toolsVersion.startsWith(`${f.xen}.`)).toBe(true);
    }
  });

  it("builds the guest kernels whose release kernel/build.sh sets", () => {
    const script = repoFile("kernel", "build.sh");
    expect(script).toContain('--set-str LOCALVERSION "-$variant"');
    expect(script).toContain("variant=$([[ $stock == 1 ]] && echo stock || echo fastsuspend)");
    for (const s of STACKS) {
      const f = stackFacts(s);
      const base = baseOf(f.kernelBuildArgs, script, "base");
      expect(base).toBe(f.linux);
      const arm = caseArm(script, base);
      expect(assigned(arm, "SRC_PKG")).toBe(`linux-source-${f.linux}`);
      // linux-source's Debian version, less its revision: the tree's kernel version.
      const version = assigned(arm, "SRC_VER").replace(/-[^-]+$/, "");
      expect(f.guestKernelRelease).toEqual({ patched: `${version}-fastsuspend`, stock: `${version}-stock` });
    }
  });

  it("builds the patched hypervisor from the Xen version it reports", () => {
    const script = repoFile("hypervisor-patches", "build.sh");
    for (const s of STACKS) {
      const f = stackFacts(s);
      const base = baseOf(f.hypervisorBuildArgs, script, "BASE");
      expect(base).toBe(f.xen);
      // Debian's 4.17.5+72-g01140da4e8-1 or upstream's 4.20.4: xl info reports the upstream part.
      expect(assigned(caseArm(script, base), "SRC_VERSION").replace(/[+-].*$/, "")).toBe(f.patchedXenVersion);
    }
  });

  it("passes the interface version the series leaves unbumped", () => {
    for (const s of STACKS) {
      const f = stackFacts(s);
      const dir = join(repoDir, "hypervisor-patches", ...(f.hypervisorBuildArgs.length === 0 ? [] : [f.xen]));
      const first = readdirSync(dir).find((p) => p.startsWith("0001-"));
      if (first === undefined) throw new Error(`no 0001 patch in ${dir}`);
      const m = /XEN_DOMCTL_INTERFACE_VERSION is deliberately not bumped: it stays at\s+0x([0-9a-f]{8})/.exec(readFileSync(join(dir, first), "utf8"));
      expect(m?.[1]).toBeDefined();
      expect(Number.parseInt(m?.[1] ?? "", 16)).toBe(f.domctlInterfaceVersion);
    }
  });
});

describe("stackFromEnv", () => {
  it("reads FASTSUSPEND_STACK, bookworm when unset or empty", () => {
    expect(stackFromEnv({})).toBe("bookworm");
    expect(stackFromEnv({ FASTSUSPEND_STACK: "" })).toBe("bookworm");
    expect(stackFromEnv({ FASTSUSPEND_STACK: "trixie" })).toBe("trixie");
  });

  it("refuses an unknown stack, saying what to set", () => {
    expect(() => stackFromEnv({ FASTSUSPEND_STACK: "sid" })).toThrow(LabError);
    expect(() => stackFromEnv({ FASTSUSPEND_STACK: "sid" })).toThrow(/FASTSUSPEND_STACK: unknown stack "sid"[\s\S]*fix: set it to bookworm or trixie, or unset it for bookworm/);
  });
});

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { packageDir, pinsFile } from "./paths";

export interface Pins {
  suite: string;
  packages: Record<string, string>;
  dom0Kernel: string;
  hostPackages: string[];
}

export function loadPins(): Pins {
  return JSON.parse(readFileSync(pinsFile, "utf8")) as Pins;
}

/**
 * The lab's stacks: one Debian release each, with its own Xen, dom0 toolstack, libraries and dom0
 * kernel. bookworm (Xen 4.17, Linux 6.1) is the default and is built by artefacts.ts from
 * pins.json exactly as before stacks existed; every other stack by stack-artefacts.ts from
 * pins-<stack>.json.
 */
export const STACKS = ["bookworm", "trixie"] as const;
export type Stack = (typeof STACKS)[number];
export const DEFAULT_STACK = "bookworm" satisfies Stack;
/** A stack built by stack-artefacts.ts. */
export type OtherStack = Exclude<Stack, typeof DEFAULT_STACK>;

export function parseStack(s: string | undefined): Stack {
  if (s === undefined || s === "") return DEFAULT_STACK;
  if ((STACKS as readonly string[]).includes(s)) return s as Stack;
  throw new Error(`unknown stack ${JSON.stringify(s)} (known: ${STACKS.join(", ")})`);
}

/** The pins of a stack other than bookworm: the packages, plus what the stack's builder needs. */
export interface StackPins extends Pins {
  /** Which apt configuration downloads the packages: the project's own one for this release. */
  apt: "trixie";
  /** Xen's major.minor: names xen-hypervisor-X-amd64, boot/xen-X-amd64.gz, usr/lib/xen-X. */
  xen: string;
  /** Packages for the native addon's sysroot (headers, .so links), not for dom0. */
  sysrootPackages: Record<string, string>;
}

export function stackPinsFile(stack: Stack): string {
  return stack === DEFAULT_STACK ? pinsFile : join(packageDir, `pins-${stack}.json`);
}

export function loadStackPins(stack: OtherStack): StackPins {
  const p = JSON.parse(readFileSync(stackPinsFile(stack), "utf8")) as StackPins;
  for (const k of ["suite", "apt", "xen", "packages", "dom0Kernel", "hostPackages", "sysrootPackages"] as const) {
    if ((p as Partial<StackPins>)[k] === undefined) throw new Error(`${stackPinsFile(stack)} has no "${k}"`);
  }
  if (!/^\d+\.\d+$/.test(p.xen)) throw new Error(`${stackPinsFile(stack)}: "xen" must be major.minor, not ${JSON.stringify(p.xen)}`);
  if (!p.packages[`xen-hypervisor-${p.xen}-amd64`]) throw new Error(`${stackPinsFile(stack)} pins no xen-hypervisor-${p.xen}-amd64`);
  if (!Object.keys(p.packages).some((k) => k === `linux-image-${p.dom0Kernel}`)) throw new Error(`${stackPinsFile(stack)} pins no linux-image-${p.dom0Kernel}`);
  return p;
}

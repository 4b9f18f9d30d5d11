// What a lab of each stack is, in one place: the lab tests compare what they see in dom0 and in
// the guests' logs with it, and `npm test` and the bench build a stack's guest kernels and patched
// hypervisor with its build arguments. Every value is copied from the file that decides it (named
// on each field); test/stack-facts.test.ts reads those files and fails when one of them moves.
import { LabError } from "./errors";
import { DEFAULT_STACK, STACKS, parseStack, type Stack } from "./pins";

export interface StackFacts {
  stack: Stack;
  /** Xen's major.minor, stock and patched alike (`xl info`: xen_major, xen_minor). pins*.json. */
  xen: string;
  /** The Linux series of dom0 and of the guest kernels (kernel/build.sh --base). */
  linux: string;
  /** What `xl info` reports for the hypervisor hypervisor-patches/build.sh builds (its source's version). */
  patchedXenVersion: string;
  /** The Debian package version of dom0's Xen tools and of the stock hypervisor (pins*.json). */
  toolsPackageVersion: string;
  /** Its upstream part, as people name it ("Debian's 4.17.7 tools"). */
  toolsVersion: string;
  /**
   * XEN_DOMCTL_INTERFACE_VERSION, which every domctl caller passes; the hypervisor series does not
   * bump it (hypervisor-patches/INTERFACE.md). Xen answers any other value with EACCES.
   */
  domctlInterfaceVersion: number;
  /** `uname -r` of the guest kernels kernel/build.sh builds (LOCALVERSION -fastsuspend, -stock). */
  guestKernelRelease: { patched: string; stock: string };
  /** kernel/build.sh's arguments for this stack's guest kernels (add --stock for the stock one). */
  kernelBuildArgs: readonly string[];
  /** hypervisor-patches/build.sh's arguments for this stack's patched hypervisor. */
  hypervisorBuildArgs: readonly string[];
}

// bookworm's build arguments are empty, as they were before stacks: the scripts' defaults.
const FACTS: Record<Stack, StackFacts> = {
  bookworm: {
    stack: "bookworm",
    xen: "4.17",
    linux: "6.1",
    patchedXenVersion: "4.17.5",
    toolsPackageVersion: "4.17.7+13-g2445b30a44-0+deb12u1",
    toolsVersion: "4.17.7",
    domctlInterfaceVersion: 0x15,
    guestKernelRelease: { patched: "6.1.192-fastsuspend", stock: "6.1.192-stock" },
    kernelBuildArgs: [],
    hypervisorBuildArgs: [],
  },
  trixie: {
    stack: "trixie",
    xen: "4.20",
    linux: "6.12",
    patchedXenVersion: "4.20.4",
    toolsPackageVersion: "4.20.4+63-g7abfd2bce2-0+deb13u1",
    toolsVersion: "4.20.4",
    domctlInterfaceVersion: 0x17,
    guestKernelRelease: { patched: "6.12.118-fastsuspend", stock: "6.12.118-stock" },
    kernelBuildArgs: ["--base", "6.12"],
    hypervisorBuildArgs: ["--base", "4.20"],
  },
};

export function stackFacts(stack: Stack): StackFacts {
  return FACTS[stack];
}

/**
 * The stack a lab test runs on: FASTSUSPEND_STACK (set by `npm test`), bookworm when unset. The
 * tests compare with this rather than ask the lab, so that a lab of the wrong stack fails them.
 */
export function stackFromEnv(env: NodeJS.ProcessEnv = process.env): Stack {
  try {
    return parseStack(env.FASTSUSPEND_STACK);
  } catch (e) {
    throw new LabError(`FASTSUSPEND_STACK: ${(e as Error).message}`, `set it to ${STACKS.join(" or ")}, or unset it for ${DEFAULT_STACK}`);
  }
}

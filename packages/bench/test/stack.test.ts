// The stack the bench runs on: what it builds for it, what it calls what it booted, and that the
// JSON says which stack it was. bookworm's must be what the bench did before stacks.
import type { BenchResult } from "@fastsuspend/cli";

import { benchJson, benchStackPlan, pvhHypervisors } from "../src/bench";

describe("the bench's stack", () => {
  it("builds and names bookworm's artefacts as before stacks", () => {
    expect(benchStackPlan("bookworm")).toEqual({
      kernelArgs: [], stockKernelArgs: ["--stock"], hypervisorArgs: [],
      patchedHypervisor: "patched 4.17.5 (suspend notify)", debianHypervisor: "Debian 4.17.7", linux: "6.1",
    });
  });

  it("runs a PVH lab per hypervisor asked, in order, and says when the patched one cannot be had", () => {
    const said: string[] = [];
    const log = (l: string): void => { said.push(l); };
    expect(pvhHypervisors(["debian", "patched"], "/c/xen", true, log)).toEqual([undefined, "/c/xen"]);
    expect(pvhHypervisors(["patched", "debian"], "/c/xen", true, log)).toEqual(["/c/xen", undefined]);
    expect(said).toEqual([]);
    expect(pvhHypervisors(["debian", "patched"], undefined, false, log)).toEqual([undefined]);
    expect(pvhHypervisors(["patched"], "/c/xen", false, log)).toEqual([]);
    expect(said).toEqual(["no PVH rows on the patched hypervisor: it was not built", "no PVH rows on the patched hypervisor: it did not boot"]);
  });

  it("builds trixie's guest kernels on 6.12 and its hypervisor on 4.20", () => {
    expect(benchStackPlan("trixie")).toEqual({
      kernelArgs: ["--base", "6.12"], stockKernelArgs: ["--base", "6.12", "--stock"], hypervisorArgs: ["--base", "4.20"],
      patchedHypervisor: "patched 4.20.4 (suspend notify)", debianHypervisor: "Debian 4.20.4", linux: "6.12",
    });
  });

  it("records the stack in the JSON, bench-run's result unchanged", () => {
    const result = { xen: "4.20.4 (patched 4.20.4 (suspend notify))", xenstored: "oxenstored", paths: [] } as unknown as BenchResult;
    const json = benchJson(result, "trixie");
    expect(json).toEqual({ ...result, stack: "trixie" });
    expect(JSON.parse(JSON.stringify(json))).toMatchObject({ stack: "trixie", xen: result.xen });
    expect(result).not.toHaveProperty("stack");
  });
});

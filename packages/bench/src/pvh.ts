// The PVH section of the benchmark (issues 13 and 14): what people run. A second lab, booted after
// the PV one is down, whose CPU model gives Xen HVM with nested paging (PVH_CPU; QEMU then runs TCG
// single-threaded, the only way PVH guests do not triple-fault in this lab: docs/results.md). On a
// PVH guest with the stock kernel and one with the patched kernel, in turn: stock `xl save -c`,
// `xl remus -b` at each interval, `xl migrate` to localhost (log-dirty: PVH only on Debian's Xen),
// each measured by the guest's blackout probe; then our own paths on the patched guest.
import type { BenchPathResult, ToolstackResult } from "@fastsuspend/cli";
import { writeFileSync } from "node:fs";

import { Lab, PVH_CPU, type Progress, type Stack } from "@fastsuspend/lab";

import { xlRemusRow } from "./remus";
import { runningState, toolstackGuest, xlRepeatedRow, xlState, type ToolstackKernel } from "./toolstack";
import { whyFailed } from "./why";

export interface PvhSectionOptions {
  labName: string;
  stack: Stack;
  progress: Progress;
  hypervisor?: string;
  hvDesc: string;
  kernels: ToolstackKernel[];
  /** `xl save -c` and `xl migrate` runs per kernel (0: neither). */
  runs: number;
  /** `xl remus -b -i MS` runs, each `remusSeconds` long. */
  remusIntervalsMs: number[];
  remusSeconds: number;
  log: (line: string) => void;
  /** Where Xen's log and the guests' console tails go when the section ends (for rows that failed). */
  consolesFile?: string;
  /** Our paths on a guest (the bench's bench-run), for the patched kernel's rows. */
  ourPaths?: (l: Lab, domid: number, guestName: string) => Promise<BenchPathResult[]>;
}

export interface PvhSection {
  toolstack: ToolstackResult[];
  paths: BenchPathResult[];
}

/** A stand-in for ssh: drops the host argument and runs the rest (xl migrate-receive) in dom0. */
const FAKE_SSH = `printf '#!/bin/sh\\nshift\\nexec sh -c "$*"\\n' >/tmp/fakessh && chmod +x /tmp/fakessh`;

export async function pvhSection(o: PvhSectionOptions): Promise<PvhSection> {
  const out: PvhSection = { toolstack: [], paths: [] };
  const l = await Lab.up({ name: o.labName, stack: o.stack, progress: o.progress, cpu: PVH_CPU, ...(o.hypervisor === undefined ? {} : { hypervisor: o.hypervisor }), ...(o.kernels[0] === undefined ? {} : { guestKernel: o.kernels[0].path }) });
  try {
    const caps = (await l.mustExec("xl info")).split("\n").find((x) => x.startsWith("virt_caps")) ?? "";
    if (!/\bhvm\b/.test(caps)) throw new Error(`the PVH lab's Xen offers no HVM (${caps.trim()})`);
    await l.mustExec(FAKE_SSH);
    const ts = { runs: o.runs, hypervisor: o.hvDesc, log: o.log, guestType: "pvh" as const };
    for (const k of o.kernels) {
      const row = async (what: string, f: () => Promise<ToolstackResult>): Promise<void> => {
        try {
          out.toolstack.push(await f());
        } catch (e) {
          o.log(`${what} on the ${k.desc} PVH guest failed, left out: ${whyFailed(e)}`);
          // A guest that is no longer running fails every row after this one: say so once.
          const state = await xlState(l, k.name);
          if (!runningState(state)) throw new Error(`the guest is ${state === "" ? "gone" : `in state ${state}`} after ${what}`);
        }
      };
      try {
        const domid = await toolstackGuest(l, k, "pvh", o.log);
        if (o.runs > 0) await row("xl save -c", () => xlRepeatedRow(l, k, "xl save -c", ["save", "-c", k.name, "/dev/null"], ts));
        for (const ms of o.remusIntervalsMs) await row(`xl remus -b -i ${ms}`, () => xlRemusRow(l, k, "pvh", ms, o.remusSeconds, ts));
        if (o.runs > 0) await row("xl migrate", () => xlRepeatedRow(l, k, "xl migrate", ["migrate", "-s", "/tmp/fakessh", k.name, "localhost"], ts));
        if (o.ourPaths !== undefined && k.ourPaths === true) {
          // After the migrations the guest has another domid.
          const now = Number((await l.mustExec(["xl", "domid", k.name])).trim());
          o.log(`our paths on the ${k.desc} PVH guest (domain ${now}, was ${domid})`);
          out.paths.push(...(await o.ourPaths(l, now, k.name)).map((p) => ({ ...p, name: `${p.name} (pvh)`, guestType: "pvh" as const })));
        }
      } catch (e) {
        o.log(`the ${k.desc} PVH guest failed, its rows left out: ${whyFailed(e)}`);
      } finally {
        await l.destroyGuest(k.name).catch(() => undefined);
      }
    }
    return out;
  } finally {
    if (o.consolesFile !== undefined) {
      const file = o.consolesFile;
      await l.consoleTails().then((t) => { writeFileSync(file, t); }, () => undefined);
    }
    await l.down();
  }
}

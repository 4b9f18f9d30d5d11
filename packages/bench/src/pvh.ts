// The PVH section of the benchmark (issues 13 and 14): what people run. A lab, booted after the PV
// one is down, whose CPU model gives Xen HVM with nested paging (PVH_CPU; QEMU then runs TCG
// single-threaded, the only way PVH guests do not triple-fault in this lab: docs/results.md). A PVH
// guest per kernel (stock, patched, fast suspend), all created first and paused; then each row in
// turns across them, a guest unpaused for its turn: stock `xl save -c`, `xl remus -b` at each
// interval, `xl migrate` to localhost (log-dirty: PVH only on Debian's Xen), each measured by the
// guest's blackout probe; then our own paths on the patched guest.
import type { BenchPathResult, ToolstackResult } from "@fastsuspend/cli";
import { writeFileSync } from "node:fs";

import { Lab, PVH_CPU, blackout, type Progress, type Stack } from "@fastsuspend/lab";

import { noRemusSamples, remusRow, xlRemusRun } from "./remus";
import { noRepeatedSamples, pausedState, repeatedRow, runningState, toolstackGuest, xlRepeatedRuns, xlState, type ToolstackKernel } from "./toolstack";
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

/** The turns each row is taken in: every guest's share of a row, one guest after the other, rotated. */
export const PVH_ROUNDS = 3;

/** Round r's part of `total` (runs or seconds) split over `rounds` turns: the first turns take the remainder. */
export const shareOf = (total: number, rounds: number, r: number): number => Math.floor(total / rounds) + (r < total % rounds ? 1 : 0);

/** The guests of round r, rotated by r so that each goes first in one round. */
export const rotated = <T>(xs: readonly T[], r: number): T[] => xs.map((_, i) => xs[(i + r) % xs.length] as T);

/** One row of the section: runs (or seconds) for every guest, split over the rounds. */
interface PvhRowTask {
  what: string;
  total: number;
  forGuest: (k: ToolstackKernel) => GuestRow;
}

/** A guest's row as its turns fill it: a turn says whether the guest is still running. */
interface GuestRow {
  turn: (share: number) => Promise<boolean>;
  row: () => ToolstackResult;
}

export async function pvhSection(o: PvhSectionOptions): Promise<PvhSection> {
  const out: PvhSection = { toolstack: [], paths: [] };
  const l = await Lab.up({ name: o.labName, stack: o.stack, progress: o.progress, cpu: PVH_CPU, ...(o.hypervisor === undefined ? {} : { hypervisor: o.hypervisor }), ...(o.kernels[0] === undefined ? {} : { guestKernel: o.kernels[0].path }) });
  try {
    const caps = (await l.mustExec("xl info")).split("\n").find((x) => x.startsWith("virt_caps")) ?? "";
    if (!/\bhvm\b/.test(caps)) throw new Error(`the PVH lab's Xen offers no HVM (${caps.trim()})`);
    await l.mustExec(FAKE_SSH);
    // Every guest up first, then each row in turns across them (PVH_ROUNDS rounds, the order rotated):
    // the host's speed drifts over minutes (session 17: the same stock guest's xl save -c took 2.8 s
    // in one lab and 4.8 s in the next, half an hour later), and guests measured one after the other,
    // the stock one always first, put that drift into the ratios. A guest waits its turn paused: up
    // and running, the others' blackout probes raised a guest's noise floor from p99 4 ms to 20 ms in
    // this single-threaded lab, and the third guest did not boot within 120 s (47dec9b, reverted).
    const live: ToolstackKernel[] = [];
    for (const k of o.kernels) {
      try {
        await toolstackGuest(l, k, "pvh", o.log);
        await l.mustExec(["xl", "pause", k.name]);
        live.push(k);
      } catch (e) {
        o.log(`the ${k.desc} PVH guest failed, its rows left out: ${whyFailed(e)}`);
      }
    }
    for (const task of pvhRowTasks(l, o)) {
      if (task.total <= 0) continue;
      const rows = new Map(live.map((k) => [k, task.forGuest(k)]));
      for (let r = 0; r < PVH_ROUNDS; r++) {
        for (const k of rotated(live, r)) {
          const share = shareOf(task.total, PVH_ROUNDS, r);
          const guestRow = rows.get(k);
          if (share <= 0 || guestRow === undefined) continue;
          const ok = await ownTurn(l, k, () => guestRow.turn(share)).catch((e: unknown) => {
            o.log(`${task.what} on the ${k.desc} PVH guest failed: ${whyFailed(e)}`);
            return false;
          });
          if (ok) continue;
          // A guest that is no longer running fails every row after this one: it leaves the section.
          // One its turn paused again after a failure is not that guest.
          const state = await xlState(l, k.name);
          if (runningState(state) || pausedState(state)) continue;
          o.log(`the ${k.desc} PVH guest is ${state === "" ? "gone" : `in state ${state}`} after ${task.what}: its rows from here on left out`);
          rows.delete(k);
          live.splice(live.indexOf(k), 1);
        }
      }
      for (const guestRow of rows.values()) out.toolstack.push(guestRow.row());
    }
    for (const k of live) {
      if (o.ourPaths === undefined || k.ourPaths !== true) continue;
      await l.mustExec(["xl", "unpause", k.name]);
      // After the migrations the guest has another domid.
      const now = Number((await l.mustExec(["xl", "domid", k.name])).trim());
      o.log(`our paths on the ${k.desc} PVH guest (domain ${now})`);
      out.paths.push(...(await o.ourPaths(l, now, k.name)).map((p) => ({ ...p, name: `${p.name} (pvh)`, guestType: "pvh" as const })));
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

/**
 * A guest's turn: unpaused, given a moment (its periodic tick catches up on the pause), its probe's
 * table cleared of the pause, then `f`; paused again if it is still running.
 */
async function ownTurn(l: Lab, k: ToolstackKernel, f: () => Promise<boolean>): Promise<boolean> {
  await l.mustExec(["xl", "unpause", k.name]);
  await new Promise((r) => setTimeout(r, 2000));
  await blackout(l, k.name);
  try {
    return await f();
  } finally {
    if (runningState(await xlState(l, k.name))) await l.exec(["xl", "pause", k.name]);
  }
}

/** The section's rows, in order: `xl save -c`, `xl remus -b` at each interval, `xl migrate`. */
function pvhRowTasks(l: Lab, o: PvhSectionOptions): PvhRowTask[] {
  const ts = { runs: o.runs, hypervisor: o.hvDesc, log: o.log, guestType: "pvh" as const };
  const repeated = (tool: string, args: (k: ToolstackKernel) => string[]): PvhRowTask => ({
    what: tool, total: o.runs,
    forGuest: (k) => {
      const s = noRepeatedSamples();
      return { turn: (share) => xlRepeatedRuns(l, k, args(k), share, s), row: () => repeatedRow(k, tool, s, ts) };
    },
  });
  return [
    repeated("xl save -c", (k) => ["save", "-c", k.name, "/dev/null"]),
    ...o.remusIntervalsMs.map((ms): PvhRowTask => ({
      what: `xl remus -b -i ${ms}`, total: o.remusSeconds,
      forGuest: (k) => {
        const s = noRemusSamples();
        const turn = async (share: number): Promise<boolean> => {
          await xlRemusRun(l, k, ms, share, s);
          return runningState(await xlState(l, k.name));
        };
        return { turn, row: () => remusRow(k, "pvh", ms, s, ts) };
      },
    })),
    repeated("xl migrate", (k) => ["migrate", "-s", "/tmp/fakessh", k.name, "localhost"]),
  ];
}

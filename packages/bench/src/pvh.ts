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

/**
 * At most this many runs of a repeated row (`xl save -c`, `xl migrate`) in one turn: more rounds
 * for those rows, so that a guest is not paused for long. Session 18: with 7 migrations a turn
 * (~70 s), a guest paused over four other turns (~280 s) did not answer its probe within 30 s of
 * its unpause, twice; after pauses of ~70 s it always did.
 */
export const RUNS_PER_TURN = 3;

/** The rounds of a repeated row of `runs` runs: PVH_ROUNDS, or more when a turn would exceed RUNS_PER_TURN. */
export const repeatedRounds = (runs: number): number => Math.max(PVH_ROUNDS, Math.ceil(runs / RUNS_PER_TURN));

/**
 * How long a guest may take to answer its probe after an unpause. Longer than a probe's usual 30 s:
 * the guest catches up on the time it was paused first (the bench logs how long it took).
 */
const UNPAUSE_ANSWER_MS = 180_000;

/** Round r's part of `total` (runs or seconds) split over `rounds` turns: the first turns take the remainder. */
export const shareOf = (total: number, rounds: number, r: number): number => Math.floor(total / rounds) + (r < total % rounds ? 1 : 0);

/** The guests of round r, rotated by r so that each goes first in one round. */
export const rotated = <T>(xs: readonly T[], r: number): T[] => xs.map((_, i) => xs[(i + r) % xs.length] as T);

/** One row of the section: runs (or seconds) for every guest, split over the rounds. */
interface PvhRowTask {
  what: string;
  total: number;
  rounds: number;
  forGuest: (k: ToolstackKernel) => GuestRow;
}

/** A guest's row as its turns fill it: a turn says whether the guest is still running. */
interface GuestRow {
  turn: (share: number) => Promise<boolean>;
  /** A turn that failed before its runs were measured: said in the row's errors. */
  lost: (why: string) => void;
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
    const turns: Turns = { log: o.log, pausedAt: new Map() };
    for (const k of o.kernels) {
      try {
        await toolstackGuest(l, k, "pvh", o.log);
        await l.mustExec(["xl", "pause", k.name]);
        turns.pausedAt.set(k.name, Date.now());
        live.push(k);
      } catch (e) {
        o.log(`the ${k.desc} PVH guest failed, its rows left out: ${whyFailed(e)}`);
      }
    }
    for (const task of pvhRowTasks(l, o)) {
      if (task.total <= 0) continue;
      const rows = new Map(live.map((k) => [k, task.forGuest(k)]));
      for (let r = 0; r < task.rounds; r++) {
        for (const k of rotated(live, r)) {
          const share = shareOf(task.total, task.rounds, r);
          const guestRow = rows.get(k);
          if (share <= 0 || guestRow === undefined) continue;
          const ok = await ownTurn(l, k, turns, () => guestRow.turn(share)).catch((e: unknown) => {
            o.log(`${task.what} on the ${k.desc} PVH guest failed: ${whyFailed(e)}`);
            guestRow.lost(`round ${r + 1}'s turn (${share}) lost: ${whyFailed(e)}`);
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

/** The section's turns: its log, and when each guest was last paused (dom0's clock). */
interface Turns {
  log: (line: string) => void;
  pausedAt: Map<string, number>;
}

/**
 * A guest's turn: unpaused, given a moment (its periodic tick catches up on the pause), its probe's
 * table cleared of the pause, then `f`; paused again if it is still running. A guest slow to
 * answer after its unpause is said in the log, with how long it had been paused.
 */
async function ownTurn(l: Lab, k: ToolstackKernel, t: Turns, f: () => Promise<boolean>): Promise<boolean> {
  await l.mustExec(["xl", "unpause", k.name]);
  const unpaused = Date.now();
  await new Promise((r) => setTimeout(r, 2000));
  await blackout(l, k.name, { timeoutMs: UNPAUSE_ANSWER_MS });
  const answeredS = (Date.now() - unpaused) / 1000;
  const since = t.pausedAt.get(k.name);
  if (answeredS > 10) t.log(`the ${k.desc} PVH guest answered its probe ${answeredS.toFixed(1)} s after its unpause (paused ${since === undefined ? "?" : ((unpaused - since) / 1000).toFixed(0)} s)`);
  try {
    return await f();
  } finally {
    if (runningState(await xlState(l, k.name))) {
      await l.exec(["xl", "pause", k.name]);
      t.pausedAt.set(k.name, Date.now());
    }
  }
}

/** The section's rows, in order: `xl save -c`, `xl remus -b` at each interval, `xl migrate`. */
function pvhRowTasks(l: Lab, o: PvhSectionOptions): PvhRowTask[] {
  const ts = { runs: o.runs, hypervisor: o.hvDesc, log: o.log, guestType: "pvh" as const };
  const repeated = (tool: string, args: (k: ToolstackKernel) => string[]): PvhRowTask => ({
    what: tool, total: o.runs, rounds: repeatedRounds(o.runs),
    forGuest: (k) => {
      const s = noRepeatedSamples();
      return { turn: (share) => xlRepeatedRuns(l, k, args(k), share, s), lost: (why) => s.errors.push(why), row: () => repeatedRow(k, tool, s, ts) };
    },
  });
  return [
    repeated("xl save -c", (k) => ["save", "-c", k.name, "/dev/null"]),
    ...o.remusIntervalsMs.map((ms): PvhRowTask => ({
      what: `xl remus -b -i ${ms}`, total: o.remusSeconds, rounds: PVH_ROUNDS,
      forGuest: (k) => {
        const s = noRemusSamples();
        const turn = async (share: number): Promise<boolean> => {
          await xlRemusRun(l, k, ms, share, s);
          return runningState(await xlState(l, k.name));
        };
        return { turn, lost: (why) => s.errors.push(why), row: () => remusRow(k, "pvh", ms, s, ts) };
      },
    })),
    repeated("xl migrate", (k) => ["migrate", "-s", "/tmp/fakessh", k.name, "localhost"]),
  ];
}

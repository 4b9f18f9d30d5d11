// The checkpoint loops to start again when the daemon starts (issue 16: a loop survives a daemon
// restart or a package upgrade, not only the guest it left suspended). Every loop a
// `checkpoint.start` began is kept here until it ends for a reason of its own (its count, a
// `checkpoint.stop`, its failures, its domain gone); the daemon's stop leaves it in. A `checkpoint`
// request's loop is not kept: its client waits on a connection that the restart closes. Beside the
// journal in the run directory, written atomically like it (run-file.ts).
import { rmSync } from "node:fs";

import { readRunFile, writeRunFile } from "./run-file";

export interface StoredLoop {
  domid: number;
  /** The domain's name when the loop began: a domid reused by another domain is not its domain. */
  name: string;
  intervalMs: number;
  count?: number;
  path?: string;
  timeoutMs?: number;
  /** ISO time the loop began. */
  since: string;
}

interface LoopFile {
  version: 1;
  loops: StoredLoop[];
}

const optionalNumber = (v: unknown): v is number | undefined => v === undefined || (typeof v === "number" && Number.isFinite(v) && v >= 0);

/** A stored entry as written, or undefined for one that is not (an old or hand-edited file). */
function valid(e: Partial<StoredLoop>): StoredLoop | undefined {
  if (!Number.isInteger(e.domid) || (e.domid ?? 0) <= 0 || typeof e.name !== "string" || e.name === "") return undefined;
  if (typeof e.intervalMs !== "number" || !Number.isFinite(e.intervalMs) || e.intervalMs < 0) return undefined;
  if (!optionalNumber(e.count) || !optionalNumber(e.timeoutMs) || (e.path !== undefined && typeof e.path !== "string")) return undefined;
  return {
    domid: e.domid as number, name: e.name, intervalMs: e.intervalMs, since: typeof e.since === "string" ? e.since : new Date(0).toISOString(),
    ...(e.count === undefined ? {} : { count: e.count }), ...(e.path === undefined ? {} : { path: e.path }), ...(e.timeoutMs === undefined ? {} : { timeoutMs: e.timeoutMs }),
  };
}

export class LoopStore {
  /** undefined: kept in memory only (tests, a daemon without a run directory). */
  readonly path: string | undefined;
  readonly #loops = new Map<number, StoredLoop>();

  constructor(path?: string) {
    this.path = path;
  }

  /** What a previous run left (an unreadable file counts as empty, and says so). */
  static load(path: string): { store: LoopStore; problem?: string } {
    const s = new LoopStore(path);
    const read = readRunFile(path);
    if ("readError" in read) return { store: s, problem: `cannot read the loops to restart, ${path}: ${read.readError}` };
    if ("parseError" in read) return { store: s, problem: `the loops to restart, ${path}, are not JSON (${read.parseError}): none restarted` };
    if ("absent" in read) return { store: s };
    if (read.json === null) return { store: s, problem: `the loops to restart, ${path}, are not JSON (it is null): none restarted` };
    const f = read.json as Partial<LoopFile>;
    for (const e of Array.isArray(f.loops) ? f.loops : []) {
      const l = valid(e);
      if (l !== undefined) s.#loops.set(l.domid, l);
    }
    return { store: s };
  }

  list(): StoredLoop[] {
    return [...this.#loops.values()];
  }

  set(loop: StoredLoop): void {
    this.#loops.set(loop.domid, loop);
    this.#write();
  }

  remove(domid: number): void {
    if (this.#loops.delete(domid)) this.#write();
  }

  /** Removes the file (a clean stop with no loop to restart leaves none). */
  unlink(): void {
    if (this.path !== undefined) rmSync(this.path, { force: true });
  }

  #write(): void {
    if (this.path !== undefined) writeRunFile(this.path, { version: 1, loops: this.list() } satisfies LoopFile);
  }
}

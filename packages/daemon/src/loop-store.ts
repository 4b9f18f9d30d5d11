// The checkpoint loops to start again when the daemon starts (issue 16: a loop survives a daemon
// restart or a package upgrade, not only the guest it left suspended). Every loop a
// `checkpoint.start` began is kept here until it ends for a reason of its own (its count, a
// `checkpoint.stop`, its failures, its domain gone); the daemon's stop leaves it in. A `checkpoint`
// request's loop is not kept: its client waits on a connection that the restart closes. Beside the
// journal in the run directory, written atomically like it (run-file.ts).
import { rmSync } from "node:fs";

import { parseRequest } from "./parse-request";
import type { CheckpointStartRequest } from "./protocol";
import { readRunFile, writeRunFile } from "./run-file";

export interface StoredLoop extends LoopSettings {
  /** The domain's name when the loop began: a domid reused by another domain is not its domain. */
  name: string;
  /** ISO time the loop began. */
  since: string;
  /** Quick restarts in a row (loops.ts drops a loop a dying daemon keeps restarting) and the last one's time. */
  restarts?: number;
  restartedAt?: string;
}

/** What of a `checkpoint.start` request a kept loop stores, and starts again with. */
export type LoopSettings = Pick<CheckpointStartRequest, "domid" | "intervalMs" | "count" | "path" | "timeoutMs">;

/** A request's loop settings, its optional fields only when set (the file has no nulls). */
export function loopSettings(req: LoopSettings): LoopSettings {
  return {
    domid: req.domid, intervalMs: req.intervalMs,
    ...(req.count === undefined ? {} : { count: req.count }), ...(req.path === undefined ? {} : { path: req.path }), ...(req.timeoutMs === undefined ? {} : { timeoutMs: req.timeoutMs }),
  };
}

/** The `checkpoint.start` request that starts a kept loop again. */
export function startRequest(l: StoredLoop): CheckpointStartRequest {
  return { op: "checkpoint.start", ...loopSettings(l) };
}

interface LoopFile {
  version: 1;
  loops: StoredLoop[];
}

/**
 * A stored entry as written, or why not (an old or hand-edited file): its loop settings pass the
 * same checks as a `checkpoint.start` request on the socket.
 */
function valid(e: unknown): StoredLoop | string {
  if (typeof e !== "object" || e === null) return "not an object";
  const { domid, name, intervalMs, count, path, timeoutMs, since, restarts, restartedAt } = e as Record<string, unknown>;
  if (typeof name !== "string" || name === "") return "no domain name";
  const parsed = parseRequest(JSON.stringify({ id: 0, op: "checkpoint.start", domid, intervalMs, count, path, timeoutMs }));
  if (parsed.error !== undefined) return parsed.error.message;
  const req = parsed.request as CheckpointStartRequest;
  const quick = Number.isInteger(restarts) && typeof restartedAt === "string" && !Number.isNaN(Date.parse(restartedAt));
  return {
    ...loopSettings(req), name, since: typeof since === "string" ? since : new Date(0).toISOString(),
    ...(quick ? { restarts: restarts as number, restartedAt: restartedAt } : {}),
  };
}

export class LoopStore {
  /** undefined: kept in memory only (tests, a daemon without a run directory). */
  readonly path: string | undefined;
  readonly #loops = new Map<number, StoredLoop>();
  readonly #log: (line: string) => void;

  constructor(path?: string, log: (line: string) => void = () => undefined) {
    this.path = path;
    this.#log = log;
  }

  /** What a previous run left (an unreadable file counts as empty, and says so). */
  static load(path: string, log: (line: string) => void = () => undefined): { store: LoopStore; problem?: string } {
    const s = new LoopStore(path, log);
    const read = readRunFile(path);
    if ("readError" in read) return { store: s, problem: `cannot read the loops to restart, ${path}: ${read.readError}` };
    if ("parseError" in read) return { store: s, problem: `the loops to restart, ${path}, are not JSON (${read.parseError}): none restarted` };
    if ("absent" in read) return { store: s };
    if (read.json === null) return { store: s, problem: `the loops to restart, ${path}, are not JSON (it is null): none restarted` };
    const f = read.json as Partial<LoopFile>;
    for (const e of Array.isArray(f.loops) ? (f.loops as unknown[]) : []) {
      const l = valid(e);
      if (typeof l === "string") log(`the loops to restart, ${path}: an entry dropped (${l}): ${JSON.stringify(e).slice(0, 200)}`);
      else s.#loops.set(l.domid, l);
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

  get(domid: number): StoredLoop | undefined {
    return this.#loops.get(domid);
  }

  /** Forgets the entry's quick restarts (its loop ended in an orderly daemon stop). */
  clearRestarts(domid: number): void {
    const e = this.#loops.get(domid);
    if (e?.restarts === undefined && e?.restartedAt === undefined) return;
    const rest: StoredLoop = { ...e };
    delete rest.restarts;
    delete rest.restartedAt;
    this.set(rest);
  }

  remove(domid: number): void {
    if (this.#loops.delete(domid)) this.#write();
  }

  /** Removes the file (a clean stop with no loop to restart leaves none). */
  unlink(): void {
    if (this.path === undefined) return;
    try {
      rmSync(this.path, { force: true });
    } catch (err) {
      this.#log(`cannot remove ${this.path}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /**
   * The file follows memory, which stays authoritative: a write that fails (/run full or read-only)
   * is said, and the next change writes the whole list again.
   */
  #write(): void {
    if (this.path === undefined) return;
    try {
      writeRunFile(this.path, { version: 1, loops: this.list() } satisfies LoopFile);
    } catch (err) {
      this.#log(`cannot write the loops to restart, ${this.path}: ${err instanceof Error ? err.message : String(err)} (a daemon restart now starts the loops of the last good write)`);
    }
  }
}

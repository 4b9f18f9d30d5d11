// The crash journal: domains the daemon may leave suspended if it dies (kill -9) in the middle of
// a suspend request or a checkpoint cycle. One entry per (domid, owner op): a checkpoint cycle
// adds its entry right before its trigger and removes it once the guest is resumed; a suspend
// request adds its own for the time of the suspend. Written atomically (tmp file + rename) so a
// crash while writing leaves the previous version. On the next start, every journalled domain that
// still exists has its suspend subscription reset (it pointed at a port of the dead process) and,
// if it is shut down with reason suspend, is resumed, unless another tool is at work on it: another
// process holds its suspend lock, a request is pending in its control/shutdown, or an xl /
// libxl-save-helper process names it (`xl save`/`migrate` of a guest without a suspend channel
// takes no lock). Resuming a domain that xl is saving or migrating would split it in two.
import { rmSync } from "node:fs";

import { controlShutdownKey, domainState, errorText, resumeSuspended, shutdownReasonText, type XenstoreLike } from "@fastsuspend/coordinator";
import { isXenError, type XenBinding } from "@fastsuspend/xen";

import { readRunFile, writeRunFile } from "./run-file";

export interface JournalEntry {
  domid: number;
  /** What put it there (its owner): a suspend request in flight, or a checkpoint cycle in flight. */
  reason: "suspend" | "checkpoint";
  /** ISO time it was added. */
  since: string;
  /** The daemon's pid at the time (diagnostics). */
  pid: number;
}

interface JournalFile {
  version: 1;
  entries: JournalEntry[];
}

const key = (domid: number, reason: JournalEntry["reason"]): string => `${domid}:${reason}`;

export class Journal {
  readonly path: string;
  /** Keyed by `${domid}:${reason}`: a suspend request and a loop's cycle never share an entry. */
  readonly #entries = new Map<string, JournalEntry>();
  /** Number of writes (tests, metrics). */
  writes = 0;

  constructor(path: string) {
    this.path = path;
  }

  /** Reads what a previous run left (an unreadable file counts as empty, and says so). */
  static load(path: string): { journal: Journal; problem?: string } {
    const j = new Journal(path);
    const read = readRunFile(path);
    if ("readError" in read) return { journal: j, problem: `cannot read journal ${path}: ${read.readError}` };
    if ("parseError" in read) return { journal: j, problem: `journal ${path} is not valid JSON (${read.parseError}): ignored` };
    if ("absent" in read) return { journal: j };
    if (read.json === null) return { journal: j, problem: `journal ${path} is not valid JSON (it is null): ignored` };
    const f = read.json as Partial<JournalFile>;
    for (const e of Array.isArray(f.entries) ? f.entries : []) {
      if (Number.isInteger(e.domid) && e.domid > 0) {
        const reason = e.reason === "suspend" ? "suspend" : "checkpoint";
        j.#entries.set(key(e.domid, reason), { ...e, reason });
      }
    }
    return { journal: j };
  }

  entries(): JournalEntry[] {
    return [...this.#entries.values()].sort((a, b) => a.domid - b.domid || a.reason.localeCompare(b.reason));
  }

  /** Domids with at least one entry, ascending. */
  domids(): number[] {
    return [...new Set(this.entries().map((e) => e.domid))];
  }

  /** Any entry for the domain (or the one of `reason`). */
  has(domid: number, reason?: JournalEntry["reason"]): boolean {
    if (reason !== undefined) return this.#entries.has(key(domid, reason));
    return this.entries().some((e) => e.domid === domid);
  }

  add(domid: number, reason: JournalEntry["reason"]): void {
    const k = key(domid, reason);
    if (this.#entries.has(k)) return;
    this.#entries.set(k, { domid, reason, since: new Date().toISOString(), pid: process.pid });
    this.#write();
  }

  /** Removes the owner's entry (`reason`), or every entry of the domain (it is gone). */
  remove(domid: number, reason?: JournalEntry["reason"]): void {
    let changed = false;
    for (const r of reason === undefined ? (["suspend", "checkpoint"] as const) : [reason]) changed = this.#entries.delete(key(domid, r)) || changed;
    if (changed) this.#write();
  }

  clear(): void {
    this.#entries.clear();
    this.#write();
  }

  #write(): void {
    writeRunFile(this.path, { version: 1, entries: this.entries() } satisfies JournalFile);
    this.writes++;
  }

  /** Removes the file (clean shutdown with nothing left). */
  unlink(): void {
    rmSync(this.path, { force: true });
  }
}

export interface RecoveryAction {
  domid: number;
  /**
   * resumed; running (nothing to resume); gone; failed; locked-by-other (another process holds its
   * suspend lock); left-alone (suspended, and another tool is at work on it: see `detail`).
   */
  action: "resumed" | "running" | "gone" | "failed" | "locked-by-other" | "left-alone";
  /** The suspend subscription was reset to none (port 0). */
  unsubscribed: boolean;
  detail?: string;
}

/** Whether the toolstack (xl save/migrate/remus) works on a domain: the daemon's /proc scan, see toolstack.ts. */
export type ToolstackUser = (domid: number, name: string | undefined) => Promise<string | undefined> | string | undefined;

/**
 * Whether a domain found suspended may be resumed now, as far as a process that holds its suspend
 * lock can tell (the lock already excludes libxl for a guest with a suspend channel: libxl takes it
 * and, finding the guest already suspended, copies it at once).
 *
 * - A request pending in control/shutdown: another tool (xl save/migrate of a stock guest) wrote it
 *   and is waiting for the guest to acknowledge it (libxl's pvcontrol wait); a suspended guest cannot.
 *   xl has therefore not started copying, and resuming is safe and is what lets xl go on: the guest
 *   then serves the request, exactly as after one of our cycles during which xl wrote it. Left
 *   suspended instead, xl gives up after its 60 s and the guest stays suspended. So: resume (`note`).
 * - No request pending but an xl / libxl-save-helper process naming the domain: xl may have had its
 *   request acknowledged (the guest served it and ours together) and be copying the guest now;
 *   resuming would run it twice after a migration. So: leave it alone (`leave`).
 */
export async function resumeCheck(xs: XenstoreLike, domid: number, toolstackUser: ToolstackUser | undefined): Promise<{ leave?: string; note?: string }> {
  const v = await xs.tryReadString(controlShutdownKey(domid)).catch(() => undefined);
  if (v !== undefined && v !== "") return { note: `a request from another tool is pending in control/shutdown ("${v.slice(0, 16)}"): the guest serves it once resumed` };
  if (toolstackUser === undefined) return {};
  const name = await xs.tryReadString(`/local/domain/${domid}/name`).catch(() => undefined);
  const p = await toolstackUser(domid, name);
  return p === undefined ? {} : { leave: `the toolstack is working on it (may be copying it): ${p}` };
}

/**
 * After a crash: for every journalled domain, reset its suspend subscription and resume it if it
 * is left suspended, then clear the journal. Left alone: a domain whose suspend lock another process
 * holds (xl save/migrate of a guest with a suspend channel), and a suspended domain that an xl
 * process may be copying (`resumeCheck`: xl save/migrate of a stock guest takes no lock; resuming
 * the guest it copies would run it twice after a migration).
 */
export async function recoverJournal(journal: Journal, xen: XenBinding, xs: XenstoreLike, opts: { toolstackUser?: ToolstackUser } = {}): Promise<RecoveryAction[]> {
  const actions: RecoveryAction[] = [];
  for (const d of journal.domids()) {
    let info;
    try {
      info = xen.getInfo(d);
    } catch (err) {
      actions.push({ domid: d, action: isXenError(err, "ESRCH") ? "gone" : "failed", unsubscribed: false, ...(isXenError(err, "ESRCH") ? {} : { detail: errorText(err) }) });
      continue;
    }
    const state = domainState(info);
    if (state === "dying") {
      actions.push({ domid: d, action: "gone", unsubscribed: false, detail: "dying" });
      continue;
    }
    let lock;
    try {
      lock = xen.lockSuspend(d);
    } catch (err) {
      actions.push({ domid: d, action: "locked-by-other", unsubscribed: false, detail: errorText(err) });
      continue;
    }
    let unsubscribed = false;
    try {
      // The dead process's subscription would swallow the next suspend's VIRQ_DOM_EXC (xl's watch).
      try {
        xen.subscribeForSuspend(d, 0);
        unsubscribed = true;
      } catch {
        /* best effort */
      }
      if (state === "suspended") {
        const check = await resumeCheck(xs, d, opts.toolstackUser).catch((err: unknown) => ({ leave: `cannot tell whether another tool works on it (${errorText(err)})`, note: undefined }));
        if (check.leave !== undefined) {
          actions.push({ domid: d, action: "left-alone", unsubscribed, detail: `suspended, not resumed: ${check.leave}` });
          continue;
        }
        try {
          await resumeSuspended(xen, xs, d, { fast: true });
          actions.push({ domid: d, action: "resumed", unsubscribed, ...(check.note === undefined ? {} : { detail: check.note }) });
        } catch (err) {
          actions.push({ domid: d, action: "failed", unsubscribed, detail: errorText(err) });
        }
      } else {
        actions.push({ domid: d, action: "running", unsubscribed, ...(state === "crashed" || state === "shutdown" ? { detail: `shut down (${shutdownReasonText(info)})` } : {}) });
      }
    } finally {
      lock.release();
    }
  }
  journal.clear();
  return actions;
}

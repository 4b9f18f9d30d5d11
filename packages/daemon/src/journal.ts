// The crash journal: domains the daemon may leave suspended if it dies (kill -9) in the middle of
// a suspend request or a checkpoint loop. Written atomically (tmp file + rename) so a crash while
// writing leaves the previous version. On the next start, every journalled domain that still
// exists and is shut down with reason suspend is resumed, and its suspend subscription (which
// pointed at a port of the dead process) is reset, unless another process holds its suspend lock.
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

import { errorText, resumeSuspended, type XenstoreLike } from "@fastsuspend/coordinator";
import { isXenError, type XenBinding } from "@fastsuspend/xen";

export interface JournalEntry {
  domid: number;
  /** What put it there: a suspend request in flight, or a running checkpoint loop. */
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

export class Journal {
  readonly path: string;
  readonly #entries = new Map<number, JournalEntry>();
  /** Number of writes (tests, metrics). */
  writes = 0;

  constructor(path: string) {
    this.path = path;
  }

  /** Reads what a previous run left (an unreadable file counts as empty, and says so). */
  static load(path: string): { journal: Journal; problem?: string } {
    const j = new Journal(path);
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return { journal: j };
      return { journal: j, problem: `cannot read journal ${path}: ${errorText(err)}` };
    }
    try {
      const f = JSON.parse(text) as Partial<JournalFile>;
      for (const e of Array.isArray(f.entries) ? f.entries : []) {
        if (Number.isInteger(e.domid) && e.domid > 0) j.#entries.set(e.domid, e);
      }
      return { journal: j };
    } catch (err) {
      return { journal: j, problem: `journal ${path} is not valid JSON (${errorText(err)}): ignored` };
    }
  }

  entries(): JournalEntry[] {
    return [...this.#entries.values()].sort((a, b) => a.domid - b.domid);
  }

  has(domid: number): boolean {
    return this.#entries.has(domid);
  }

  add(domid: number, reason: JournalEntry["reason"]): void {
    const cur = this.#entries.get(domid);
    if (cur?.reason === reason) return;
    this.#entries.set(domid, { domid, reason, since: new Date().toISOString(), pid: process.pid });
    this.#write();
  }

  remove(domid: number): void {
    if (!this.#entries.delete(domid)) return;
    this.#write();
  }

  clear(): void {
    this.#entries.clear();
    this.#write();
  }

  #write(): void {
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    const tmp = `${this.path}.${process.pid}.tmp`;
    const body: JournalFile = { version: 1, entries: this.entries() };
    writeFileSync(tmp, `${JSON.stringify(body)}\n`, { mode: 0o600 });
    renameSync(tmp, this.path);
    this.writes++;
  }

  /** Removes the file (clean shutdown with nothing left). */
  unlink(): void {
    rmSync(this.path, { force: true });
  }
}

export interface RecoveryAction {
  domid: number;
  action: "resumed" | "running" | "gone" | "failed" | "locked-by-other";
  /** The suspend subscription was reset to none (port 0). */
  unsubscribed: boolean;
  detail?: string;
}

/**
 * After a crash: resume every journalled domain left suspended and reset its suspend subscription,
 * then clear the journal. A domain whose suspend lock another process holds (xl save in progress)
 * is left alone: it is that process's now.
 */
export async function recoverJournal(journal: Journal, xen: XenBinding, xs: XenstoreLike): Promise<RecoveryAction[]> {
  const actions: RecoveryAction[] = [];
  for (const e of journal.entries()) {
    const d = e.domid;
    let info;
    try {
      info = xen.getInfo(d);
    } catch (err) {
      actions.push({ domid: d, action: isXenError(err, "ESRCH") ? "gone" : "failed", unsubscribed: false, ...(isXenError(err, "ESRCH") ? {} : { detail: errorText(err) }) });
      continue;
    }
    if (info.dying) {
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
      if (info.shutdown && info.shutdownReasonName === "suspend") {
        try {
          await resumeSuspended(xen, xs, d, { fast: true });
          actions.push({ domid: d, action: "resumed", unsubscribed });
        } catch (err) {
          actions.push({ domid: d, action: "failed", unsubscribed, detail: errorText(err) });
        }
      } else {
        actions.push({ domid: d, action: "running", unsubscribed, ...(info.shutdown ? { detail: `shut down (${String(info.shutdownReasonName)})` } : {}) });
      }
    } finally {
      lock.release();
    }
  }
  journal.clear();
  return actions;
}

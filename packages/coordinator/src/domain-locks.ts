// libxl's two per-domain locks, held the way libxl takes them, for a holder that keeps them only
// around each piece of work (a session with hold "operation", the daemon's checks before a cycle).
//
// xl save, migrate and remus first take libxl's userdata lock (flock, libxl__lock_domain_userdata,
// waiting for it) to read the domain's configuration, and only then libxenguest's suspend lock
// (`suspend-evtchn-<domid>.lock`, a non-blocking F_SETLK: an xl that meets it held fails at once).
// So take() takes the userdata lock first, without waiting (EAGAIN: libxl has the domain), then
// the suspend lock. park() keeps the userdata lock across a checkpoint loop's gap: an xl that
// starts meanwhile waits in its configuration read instead of racing us to the suspend lock, and
// toolstackWaiting() sees it queued there (/proc/locks), so that the holder lets go of both.
import { isXenError, type SuspendLock, type ToolstackLock, type XenBinding } from "@fastsuspend/xen";

import { errorText } from "./errors";

export class DomainLocks {
  readonly domid: number;
  readonly #xen: XenBinding;
  /** libxl's userdata lock: from take() to release(), kept by park(). */
  #toolstack: ToolstackLock | undefined;
  /** The suspend lock: from take() to park() or release(). */
  #suspend: SuspendLock | undefined;

  constructor(xen: XenBinding, domid: number) {
    this.#xen = xen;
    this.domid = domid;
  }

  /** Both locks held: a piece of work may touch the domain. */
  get held(): boolean {
    return this.#suspend !== undefined;
  }

  /** Holding libxl's userdata lock (taken, or parked with). */
  get holdsToolstack(): boolean {
    return this.#toolstack !== undefined;
  }

  /**
   * Takes the userdata lock (unless parked with it), then the suspend lock. XenError EAGAIN:
   * another process (libxl) holds one of them (`err.call` says which: flock for the userdata
   * lock); ESRCH: no such domain. On failure nothing is left held, a parked lock included.
   */
  take(): void {
    try {
      this.#toolstack ??= this.#xen.lockToolstack(this.domid);
      this.#suspend ??= this.#xen.lockSuspend(this.domid);
    } catch (err) {
      this.release();
      throw err;
    }
  }

  /** Lets go of the suspend lock, keeps the userdata lock (a loop's gap). Never throws. */
  park(): string[] {
    const problems = releaseInto([], this.#suspend, `suspend lock dom${this.domid}`);
    this.#suspend = undefined;
    return problems;
  }

  /** Lets go of both. Never throws; returns what could not be released. */
  release(): string[] {
    const problems = releaseInto(this.park(), this.#toolstack, `userdata lock dom${this.domid}`);
    this.#toolstack = undefined;
    return problems;
  }

  /**
   * Another process (libxl: xl save, migrate, remus, destroy...) is queued on the userdata lock we
   * hold. A failure to tell counts as yes: better a skipped cycle than a failed xl.
   */
  toolstackWaiting(): boolean {
    if (this.#toolstack === undefined) return false;
    try {
      return this.#toolstack.waiting();
    } catch {
      return true;
    }
  }

  /**
   * Whether another process holds the userdata lock right now (taken and let go at once to find
   * out; a libxl that asks meanwhile waits microseconds). False while we hold it.
   */
  toolstackBusy(): boolean {
    if (this.#toolstack !== undefined) return false;
    try {
      this.#xen.lockToolstack(this.domid).release();
      return false;
    } catch (err) {
      if (isXenError(err, "EAGAIN")) return true;
      throw err;
    }
  }
}

/** Releases `lock` (if any); what goes wrong is added to `problems`, which is returned. */
function releaseInto(problems: string[], lock: { release(): void } | undefined, what: string): string[] {
  try {
    lock?.release();
  } catch (err) {
    problems.push(`release ${what}: ${errorText(err)}`);
  }
  return problems;
}

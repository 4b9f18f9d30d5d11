// The TypeScript half of the per-domain lock files libxl uses (libxenguest's suspend lock, libxl's
// userdata lock): path, idempotent release, and the in-process guard the kernel cannot give (a
// process never conflicts with its own fcntl locks, and two flock()s of one file in one process
// shut each other out).
import { DOMID_MAX, isDomid, suspendLockPath } from "./constants";
import { xenError } from "./errors";
import type { ToolstackLock } from "./interface";

export interface LockPrimitives {
  acquire(path: string): number;
  release(handle: number, path: string): void;
  /** Whether another process is blocked waiting for the lock held through `handle`. */
  waiting?(handle: number, path: string): boolean;
}

/** Per-binding registry of one kind of held lock: refuses a second lock of one domid with EBUSY. */
export class DomainLockTable {
  readonly #held = new Map<number, ToolstackLock>();
  readonly #what: string;
  readonly #pathOf: (domid: number) => string;
  readonly #prims: LockPrimitives;

  constructor(what: string, pathOf: (domid: number) => string, prims: LockPrimitives) {
    this.#what = what;
    this.#pathOf = pathOf;
    this.#prims = prims;
  }

  lock(domid: number): ToolstackLock {
    if (!isDomid(domid)) throw new RangeError(`domid must be an integer in [0, ${DOMID_MAX}], got ${String(domid)}`);
    if (this.#held.has(domid)) {
      throw xenError(this.#what, `dom=${domid}`, "EBUSY", "already held by this process");
    }
    const path = this.#pathOf(domid);
    const handle = this.#prims.acquire(path);
    let released = false;
    const prims = this.#prims;
    const lock: ToolstackLock = {
      domid,
      path,
      get released() {
        return released;
      },
      waiting: () => !released && (prims.waiting?.(handle, path) ?? false),
      release: () => {
        if (released) return;
        released = true;
        this.#held.delete(domid);
        prims.release(handle, path);
      },
    };
    this.#held.set(domid, lock);
    return lock;
  }

  /** Domids locked through this table. */
  held(): number[] {
    return [...this.#held.keys()].sort((a, b) => a - b);
  }

  releaseAll(): void {
    for (const lock of [...this.#held.values()]) lock.release();
  }
}

/** The suspend locks (`<dir>/suspend-evtchn-<domid>.lock`). */
export class SuspendLockTable extends DomainLockTable {
  constructor(dir: string, prims: LockPrimitives) {
    super("suspend lock", (domid) => suspendLockPath(domid, dir), prims);
  }
}

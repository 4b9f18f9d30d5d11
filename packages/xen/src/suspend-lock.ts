// The TypeScript half of the suspend lock: path, idempotent release, and the in-process guard that
// fcntl cannot give (a process never conflicts with its own fcntl locks).
import { suspendLockPath } from "./constants";
import { xenError } from "./errors";
import type { SuspendLock } from "./interface";

export interface LockPrimitives {
  acquire(path: string): number;
  release(handle: number, path: string): void;
}

/** Per-binding registry of held locks: refuses a second lock of one domid with EBUSY. */
export class SuspendLockTable {
  readonly #held = new Map<number, SuspendLock>();
  readonly #dir: string;
  readonly #prims: LockPrimitives;

  constructor(dir: string, prims: LockPrimitives) {
    this.#dir = dir;
    this.#prims = prims;
  }

  lock(domid: number): SuspendLock {
    if (!Number.isInteger(domid) || domid < 0 || domid > 0x7fef) {
      throw new RangeError(`domid must be an integer in [0, 32751], got ${String(domid)}`);
    }
    const path = suspendLockPath(domid, this.#dir);
    if (this.#held.has(domid)) {
      throw xenError("suspend lock", `path=${path}`, "EBUSY", "already held by this process");
    }
    const handle = this.#prims.acquire(path);
    let released = false;
    const lock: SuspendLock = {
      domid,
      path,
      get released() {
        return released;
      },
      release: () => {
        if (released) return;
        released = true;
        this.#held.delete(domid);
        this.#prims.release(handle, path);
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

// An early sign that libxl is about to work on a domain: its userdata lock file.
//
// `xl save`/`migrate`/`remus` of a guest with a suspend channel take libxenguest's suspend lock
// with a non-blocking F_SETLK: an xl that reaches it while one of our cycles holds it fails at
// once. The /proc scan before each cycle misses an xl started during the scan or the cycle. But
// before its suspend lock, xl reads the domain's configuration (libxl_retrieve_domain_configuration,
// which xl save needs for its file header), and for that libxl creates, locks and unlinks
// XEN_LIB_DIR/userdata-l.<domid>.<uuid>.domain-userdata-lock (libxl__lock_domain_userdata). An
// inotify watch sees that file created the moment xl starts on the domain; cycles are skipped for a
// while after, so that xl finds the suspend lock free. Under TCG the configuration read takes
// hundreds of ms, longer than one of our cycles; on hardware the lead is milliseconds, so this
// narrows the window without closing it (see docs/daemon.md).
import { watch, type FSWatcher } from "node:fs";

const USERDATA_LOCK = /^userdata-l\.(\d+)\.[0-9a-f-]+\.domain-userdata-lock$/;

/** The domid a libxl userdata lock file name is for, or undefined. */
export function userdataLockDomid(fileName: string): number | undefined {
  const m = USERDATA_LOCK.exec(fileName);
  return m === null ? undefined : Number(m[1]);
}

export interface UserdataWatchOptions {
  /** libxl's XEN_LIB_DIR (default /var/lib/xen). */
  dir?: string;
  /** How long after the lock file appears a domain counts as libxl's (default 3000 ms). */
  holdMs?: number;
  now?: () => number;
}

export class UserdataLockWatch {
  readonly dir: string;
  readonly #holdMs: number;
  readonly #now: () => number;
  readonly #seen = new Map<number, number>();
  #watcher: FSWatcher | undefined;
  /** Why the watch is not running (no such directory...), for the log. */
  problem: string | undefined;

  constructor(o: UserdataWatchOptions = {}) {
    this.dir = o.dir ?? "/var/lib/xen";
    this.#holdMs = o.holdMs ?? 3000;
    this.#now = o.now ?? Date.now;
  }

  /** Starts watching; never throws (a missing directory leaves only the /proc scan). */
  start(): void {
    if (this.#watcher !== undefined) return;
    try {
      this.#watcher = watch(this.dir, { persistent: false }, (_event, name) => {
        const d = name === null ? undefined : userdataLockDomid(name);
        if (d !== undefined) this.#seen.set(d, this.#now());
      });
      this.#watcher.on("error", (err) => {
        this.problem = `watch of ${this.dir} ended: ${err.message}`;
        this.close();
      });
    } catch (err) {
      this.problem = `cannot watch ${this.dir}: ${(err as Error).message}`;
    }
  }

  /** Describes libxl's recent work on the domain, or undefined. */
  user(domid: number): string | undefined {
    const at = this.#seen.get(domid);
    if (at === undefined) return undefined;
    const ago = this.#now() - at;
    if (ago > this.#holdMs) {
      this.#seen.delete(domid);
      return undefined;
    }
    return `libxl took domain ${domid}'s userdata lock ${ago} ms ago (xl save, migrate or remus starting?)`;
  }

  close(): void {
    this.#watcher?.close();
    this.#watcher = undefined;
  }
}

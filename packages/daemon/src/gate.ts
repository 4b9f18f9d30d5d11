// Time-critical work first. The daemon is one Node.js thread: every await of a checkpoint cycle
// (a xenstore read, a /proc read, the guest's event) resumes only after the event loop has handled
// whatever else is ready, and with many clients polling `status` and `metrics` back to back that is
// always a batch of requests. Under TCG emulation such a batch costs tens to hundreds of ms, and a
// cycle (and the checks before it) awaits dozens of times: cycles starved.
//
// So read-only requests yield: while time-critical work (a cycle with its checks, a suspend or a
// resume) is in flight, `status` and `metrics` wait (their lines are parsed, nothing more) and are
// answered together as soon as no such work is left, or after `maxHoldMs` at the latest, so that
// back-to-back loops on several domains cannot starve the requests either.
export class CriticalGate {
  readonly #maxHoldMs: number;
  #active = 0;
  readonly #waiters = new Set<() => void>();
  /** Requests that had to wait, and how many were released by the hold limit (metrics, tests). */
  held = 0;
  releasedByLimit = 0;

  constructor(maxHoldMs: number) {
    this.#maxHoldMs = maxHoldMs;
  }

  /** Time-critical work in flight. */
  get active(): number {
    return this.#active;
  }

  /** Requests waiting now. */
  get waiting(): number {
    return this.#waiters.size;
  }

  /** Runs `fn` as time-critical work: requests wait until it (and any other) is done. */
  async critical<T>(fn: () => Promise<T> | T): Promise<T> {
    this.#active++;
    try {
      return await fn();
    } finally {
      this.#active--;
      if (this.#active === 0) this.releaseAll();
    }
  }

  /**
   * Resolves at once ("free") when nothing time-critical runs; else when it is done ("after-work")
   * or after maxHoldMs ("hold-limit").
   */
  wait(): Promise<"free" | "after-work" | "hold-limit"> {
    if (this.#active === 0) return Promise.resolve("free");
    this.held++;
    return new Promise((resolve) => {
      let how: "after-work" | "hold-limit" = "after-work";
      const release = (): void => {
        clearTimeout(t);
        this.#waiters.delete(release);
        resolve(how);
      };
      const t = setTimeout(() => {
        this.releasedByLimit++;
        how = "hold-limit";
        release();
      }, this.#maxHoldMs);
      t.unref();
      this.#waiters.add(release);
    });
  }

  /** Lets every waiting request go (work done, or the daemon stopping). */
  releaseAll(): void {
    for (const r of [...this.#waiters]) r();
  }
}

// The idle sweeper: a session unused for idleMs is closed (its channels and ports back to the
// guest), and one kept open because the guest may still act on a timed-out request of ours gets
// its late suspend resumed. Never while a loop runs, other work on the domain is queued, or the
// domain was suspended by a `suspend` request (the client owns that suspend).
import { errorText } from "@fastsuspend/coordinator";
import { isXenError } from "@fastsuspend/xen";

import type { DaemonContext } from "./context";
import type { DomainState } from "./domains";
import type { Sessions } from "./sessions";

export class IdleSweeper {
  readonly #ctx: DaemonContext;
  readonly #sessions: Sessions;
  #timer: NodeJS.Timeout | undefined;

  constructor(ctx: DaemonContext, sessions: Sessions) {
    this.#ctx = ctx;
    this.#sessions = sessions;
  }

  start(): void {
    this.#timer = setInterval(() => {
      this.sweep();
    }, Math.max(50, Math.min(5000, this.#ctx.settings.idleMs / 4)));
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
  }

  sweep(): void {
    const { queue, settings } = this.#ctx;
    const now = Date.now();
    for (const dom of this.#ctx.domains.all()) {
      if (dom.session === undefined || dom.loop?.running === true || dom.userSuspended) continue;
      if (dom.session.outstandingRequest) {
        // Kept open while the guest may still act on a request of ours: resume a late suspend.
        if (queue.depth(dom.domid) === 0) void queue.run(dom.domid, () => this.#lateSuspend(dom));
        continue;
      }
      if (queue.depth(dom.domid) > 0 || now - dom.lastUsed < settings.idleMs) continue;
      void queue.run(dom.domid, () => this.#sessions.close(dom, { force: false }));
    }
  }

  /** The sweeper's turn at a late suspend of ours (no loop running): under the locks, see Sessions.resumeOwnLateSuspend. */
  async #lateSuspend(dom: DomainState): Promise<void> {
    try {
      dom.locks.take();
    } catch (err) {
      if (!isXenError(err, "EAGAIN") && !isXenError(err, "ESRCH")) this.#ctx.log(`dom${dom.domid}: ${errorText(err)}`);
      return;
    }
    try {
      await this.#sessions.resumeOwnLateSuspend(dom);
    } finally {
      this.#sessions.release(dom);
    }
  }
}

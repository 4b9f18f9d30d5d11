// The `suspend` and `resume` requests. A suspend leaves the guest suspended for the client (the
// idle sweeper and the daemon's stop leave it so); a resume takes back a suspend of ours or of
// another tool's, unless that tool may still be copying the domain. Both refuse a domain a loop
// runs on, and run in the domain's queue as time-critical work.
import { domainState, resumeSuspended } from "@fastsuspend/coordinator";

import type { DaemonContext } from "./context";
import { assertRunning, otherTool } from "./domain-checks";
import { loopRunning, pushSample } from "./domains";
import { resumeCheck } from "./journal";
import { DaemonError, type ResumeReply, type SuspendReply, type SuspendRequest } from "./protocol";
import type { Sessions } from "./sessions";

export class SuspendResume {
  readonly #ctx: DaemonContext;
  readonly #sessions: Sessions;

  constructor(ctx: DaemonContext, sessions: Sessions) {
    this.#ctx = ctx;
    this.#sessions = sessions;
  }

  async suspend(req: SuspendRequest): Promise<SuspendReply> {
    const { domains, journal, metrics } = this.#ctx;
    const d = req.domid;
    domains.info(d);
    await domains.name(d); // before its first work: the domain's series carry its name from the start
    const dom = domains.state(d);
    if (dom.loop?.running === true) throw new DaemonError("EBUSY", `suspend: a checkpoint loop is running on domain ${d}: stop it first (checkpoint.stop)`);
    return this.#ctx.queue.run(d, () => this.#ctx.gate.critical(async () => {
      // checkpoint.start queued before us may have started a loop meanwhile: it owns the domain.
      if (loopRunning(dom)) throw new DaemonError("EBUSY", `suspend: a checkpoint loop is running on domain ${d}: stop it first (checkpoint.stop)`);
      dom.lastUsed = Date.now();
      this.#sessions.take(dom, "suspend");
      try {
        assertRunning(domains.info(d), "suspend");
        const other = await otherTool(this.#ctx, d);
        if (other !== undefined) throw new DaemonError("EBUSY", `suspend: domain ${d}: ${other}`);
        const s = await this.#sessions.session(dom, req.path ?? dom.requestedPath);
        journal.add(d, "suspend");
        try {
          const r = await s.suspend(req.timeoutMs === undefined ? {} : { timeoutMs: req.timeoutMs });
          dom.userSuspended = true;
          metrics.suspendSeconds.observe({ path: r.path }, r.suspendMs / 1000);
          pushSample(dom.suspendMs, r.suspendMs);
          dom.last = { op: "suspend", at: new Date().toISOString(), path: r.path, timings: { triggerMs: r.triggerMs, awaitMs: r.awaitMs, confirmMs: r.confirmMs, suspendMs: r.suspendMs } };
          return { domid: d, ...r };
        } finally {
          // Suspended as asked (the client owns that now), or left running on failure.
          journal.remove(d, "suspend");
        }
      } finally {
        this.#sessions.release(dom);
        dom.lastUsed = Date.now();
      }
    }));
  }

  async resume(d: number): Promise<ResumeReply> {
    const { domains, metrics } = this.#ctx;
    domains.info(d);
    await domains.name(d); // before its first work: the domain's series carry its name from the start
    const dom = domains.state(d);
    if (dom.loop?.running === true) throw new DaemonError("EBUSY", `resume: a checkpoint loop is running on domain ${d} (it resumes the domain itself)`);
    return this.#ctx.queue.run(d, () => this.#ctx.gate.critical(async () => {
      dom.lastUsed = Date.now();
      const info = domains.info(d);
      if (domainState(info) !== "suspended") throw new DaemonError("ENOTSUSPENDED", `domain ${d} is not suspended: nothing to resume`);
      let r: { resumeMs: number; xsResumeMs: number };
      let path: string | null = null;
      const s = dom.session;
      // With or without a session: not a domain xl may be copying (its lock held, or its process
      // seen with no request of its own pending): resuming it would split it (see resumeCheck).
      this.#sessions.take(dom, "resume");
      try {
        const { leave } = await resumeCheck(this.#ctx.xs, d, this.#ctx.settings.toolstackUser);
        if (leave !== undefined) throw new DaemonError("EBUSY", `resume: domain ${d}: ${leave}: leaving it alone`);
        if (s?.state === "suspended") {
          r = await s.resume();
          path = s.path ?? null;
        } else {
          // Suspended by someone else (or before we started): resume it as `xl` would, no session.
          r = await resumeSuspended(this.#ctx.xen, this.#ctx.xs, d, { fast: true });
        }
      } finally {
        this.#sessions.release(dom);
      }
      dom.userSuspended = false;
      metrics.resumeSeconds.observe({ path: path ?? "none" }, (r.resumeMs + r.xsResumeMs) / 1000);
      dom.last = { op: "resume", at: new Date().toISOString(), path, timings: { resumeMs: r.resumeMs, xsResumeMs: r.xsResumeMs } };
      dom.lastUsed = Date.now();
      return { domid: d, ...r };
    }));
  }
}

// The `status` request: without a domid, the daemon and every guest domain (listed now, or as last
// listed); with one, what `fastsuspend info` shows (capabilities detected under the domain's queue
// when no session has them, kept CAPS_TTL_MS) and what the daemon holds and did for the domain.
import { choosePath, detect, domainStateText, errorText, summarize, type Summary } from "@fastsuspend/coordinator";
import type { DomainInfo } from "@fastsuspend/xen";

import type { DaemonContext } from "./context";
import type { DomainState } from "./domains";
import { loopStatus } from "./loops";
import type { DaemonStatus, DomainStatus } from "./protocol";

const CAPS_TTL_MS = 10_000;

/** What status says of the daemon itself. */
export interface DaemonFacts {
  startedAt: number;
  clients(): number;
  stopping(): boolean;
}

function rolling(dom: DomainState): { suspendMs: Summary; cycleMs: Summary } {
  return { suspendMs: summarize(dom.suspendMs), cycleMs: summarize(dom.cycleMs) };
}

export class StatusView {
  readonly #ctx: DaemonContext;
  readonly #facts: DaemonFacts;

  constructor(ctx: DaemonContext, facts: DaemonFacts) {
    this.#ctx = ctx;
    this.#facts = facts;
  }

  all(): DaemonStatus {
    const { xen, domains: known, journal } = this.#ctx;
    let infos: DomainInfo[];
    try {
      infos = xen.listDomains().filter((i) => i.domid !== 0);
    } catch {
      infos = known.listed();
    }
    const domains = infos.map((info) => {
      const dom = known.get(info.domid);
      return {
        domid: info.domid,
        state: domainStateText(info),
        session: dom?.session === undefined ? null : { state: dom.session.state, path: dom.session.path ?? null },
        loop: dom?.loop === undefined ? null : loopStatus(dom.loop),
        last: dom?.last ?? null,
      };
    });
    const f = this.#facts;
    return {
      daemon: { pid: process.pid, uptimeS: Math.round((Date.now() - f.startedAt) / 1000), clients: f.clients(), journal: journal.entries(), stopping: f.stopping() },
      domains,
    };
  }

  async domain(d: number): Promise<DomainStatus> {
    const { domains, queue, xen, xs, journal } = this.#ctx;
    const info = domains.info(d);
    const dom = domains.get(d);
    let caps = dom?.session?.capabilities ?? dom?.caps;
    if (caps === undefined || (dom?.session === undefined && Date.now() - (dom?.capsAt ?? 0) > CAPS_TTL_MS)) {
      // Not in a session: detect under the domain's queue (it binds the guest's port briefly).
      const st = domains.state(d);
      caps = await queue.run(d, () => detect(xen, xs, d));
      st.caps = caps;
      st.capsAt = Date.now();
    }
    let chosen: string;
    try {
      chosen = choosePath(caps, dom?.requestedPath);
    } catch (err) {
      chosen = `none (${errorText(err)})`;
    }
    const cur = domains.get(d);
    return {
      domid: d,
      state: domainStateText(info),
      capabilities: caps,
      chosen,
      pathsInUse: cur?.session?.path === undefined ? [] : [cur.session.path],
      session: cur?.session === undefined ? null : { state: cur.session.state, path: cur.session.path ?? null, lockHeldNow: cur.locks.held },
      last: cur?.last ?? null,
      rolling: rolling(cur ?? domains.state(d)),
      loop: cur?.loop === undefined ? null : loopStatus(cur.loop),
      queued: queue.depth(d),
      journalled: journal.has(d),
    };
  }
}

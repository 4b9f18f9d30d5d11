// Which guest domains exist, and what fastsuspendd keeps for each one it works on. The domain list
// is read at start and again on @introduceDomain/@releaseDomain (bursts coalesced); a domain found
// gone or dying is handed to `onGone`. A domain's name is read once, for its metrics labels and
// the toolstack scan, so that a guest able to rename itself cannot make new series at will.
import { DomainLocks, domainState, errorText, type Capabilities, type CheckpointRunner, type SuspendSession, type XenstoreLike, type XsWatchLike } from "@fastsuspend/coordinator";
import { isXenError, type DomainInfo, type XenBinding } from "@fastsuspend/xen";

import { domainLabels } from "./daemon-metrics";
import { DaemonError, type LastOp, type LoopStatus } from "./protocol";

/** A checkpoint loop the daemon runs (loops.ts). */
export interface Loop extends Pick<LoopStatus, "running" | "intervalMs" | "count" | "path" | "startedAt" | "lastError" | "lastSkip" | "stoppedBy"> {
  /** The coordinator's checkpoint runner: the loop's counts and its latency summary. */
  runner: CheckpointRunner;
  stop: AbortController;
  finished: Promise<void>;
  timeoutMs: number | undefined;
  /** Began by `checkpoint.start`, so kept in the loop store for the next daemon (loop-store.ts). */
  kept?: boolean;
}

export interface DomainState {
  domid: number;
  /** libxl's locks of the domain: held around each piece of work, the userdata lock across a loop's gaps. */
  locks: DomainLocks;
  /** When and why another tool was last seen on the domain (cycles cool down; see loop-attempt.ts). */
  otherTool?: { at: number; why: string };
  session: SuspendSession | undefined;
  /** The path asked for when the session was opened (undefined: fastest available). */
  requestedPath: string | undefined;
  caps: Capabilities | undefined;
  capsAt: number;
  last: LastOp | undefined;
  suspendMs: number[];
  cycleMs: number[];
  loop: Loop | undefined;
  lastUsed: number;
  /** Suspended by a `suspend` request and not resumed since: not touched by idle close or shutdown. */
  userSuspended: boolean;
  /** The path of the last session opened (kept after an idle close: what the domain uses). */
  path: string | undefined;
}

/** Whether a loop runs on the domain (read through a function: the loop may change across an await). */
export function loopRunning(dom: DomainState): boolean {
  return dom.loop?.running === true;
}

/** Samples kept for the rolling latencies in status, and for a loop's own summary. */
export const ROLLING_WINDOW = 100;

/** Appends a sample to a rolling window of ROLLING_WINDOW. */
export function pushSample(arr: number[], v: number): void {
  arr.push(v);
  if (arr.length > ROLLING_WINDOW) arr.splice(0, arr.length - ROLLING_WINDOW);
}

export class Domains {
  readonly #xen: XenBinding;
  readonly #xs: XenstoreLike;
  readonly #log: (line: string) => void;
  readonly #onGone: (dom: DomainState) => void;
  readonly #states = new Map<number, DomainState>();
  readonly #names = new Map<number, string | undefined>();
  /** Domains seen in the last listing (domid -> info), dom0 excluded. */
  #known = new Map<number, DomainInfo>();
  readonly #watches: XsWatchLike[] = [];
  #refreshTimer: NodeJS.Timeout | undefined;
  #following = false;

  constructor(xen: XenBinding, xs: XenstoreLike, log: (line: string) => void, onGone: (dom: DomainState) => void) {
    this.#xen = xen;
    this.#xs = xs;
    this.#log = log;
    this.#onGone = onGone;
  }

  get(domid: number): DomainState | undefined {
    return this.#states.get(domid);
  }

  /** The domain's state, made now if the daemon has not worked on it yet. */
  state(domid: number): DomainState {
    let dom = this.#states.get(domid);
    if (dom === undefined) {
      dom = { domid, locks: new DomainLocks(this.#xen, domid), session: undefined, requestedPath: undefined, caps: undefined, capsAt: 0, last: undefined, suspendMs: [], cycleMs: [], loop: undefined, lastUsed: Date.now(), userSuspended: false, path: undefined };
      this.#states.set(domid, dom);
    }
    return dom;
  }

  /** Every domain the daemon keeps state for. */
  all(): DomainState[] {
    return [...this.#states.values()];
  }

  /** Drops a domain's state and name. False if `dom` is not (or no longer) the domain's state. */
  forget(dom: DomainState): boolean {
    if (this.#states.get(dom.domid) !== dom) return false;
    this.#states.delete(dom.domid);
    this.#names.delete(dom.domid);
    return true;
  }

  /** How many guest domains the last listing found. */
  get followed(): number {
    return this.#known.size;
  }

  /** The guest domains of the last listing. */
  listed(): DomainInfo[] {
    return [...this.#known.values()];
  }

  /** getInfo, with no such domain as the request's ENODOMAIN. */
  info(domid: number): DomainInfo {
    try {
      return this.#xen.getInfo(domid);
    } catch (err) {
      if (isXenError(err, "ESRCH")) throw new DaemonError("ENODOMAIN", `no domain ${domid} (\`xl list\` shows the domains)`);
      throw err;
    }
  }

  /** The domain's name (/local/domain/N/name), read once and kept while the daemon follows the domain. */
  async name(domid: number): Promise<string | undefined> {
    if (!this.#names.has(domid)) this.#names.set(domid, await this.#xs.tryReadString(`/local/domain/${domid}/name`).catch(() => undefined));
    return this.#names.get(domid);
  }

  /** The name read by name(), if it was. */
  nameRead(domid: number): string | undefined {
    return this.#names.get(domid);
  }

  /** `{domain, domid}` for the domain's series (its name as read by name(), "" if not read or none). */
  labels(domid: number): { domain: string; domid: number } {
    return domainLabels(domid, this.#names.get(domid));
  }

  /** Lists the domains and watches @introduceDomain/@releaseDomain. */
  async follow(): Promise<void> {
    this.#following = true;
    this.refresh();
    for (const path of ["@introduceDomain", "@releaseDomain"]) {
      const w = await this.#xs.watch(path);
      this.#watches.push(w);
      void this.#watch(w);
    }
  }

  async #watch(w: XsWatchLike): Promise<void> {
    try {
      for (let r = await w.next(); r.done !== true; r = await w.next()) {
        if (!this.#following) break;
        // Coalesce bursts (each checkpoint cycle on the watch path fires @releaseDomain).
        this.#refreshTimer ??= setTimeout(() => {
          this.#refreshTimer = undefined;
          this.refresh();
        }, 20);
      }
    } catch (err) {
      if (this.#following) this.#log(`domain watch ended: ${errorText(err)}`);
    }
  }

  /** Re-reads the domain list; hands the state of domains that are gone or dying to onGone. */
  refresh(): void {
    let list: DomainInfo[];
    try {
      list = this.#xen.listDomains();
    } catch (err) {
      this.#log(`listDomains: ${errorText(err)}`);
      return;
    }
    const next = new Map<number, DomainInfo>();
    for (const info of list) if (info.domid !== 0) next.set(info.domid, info);
    for (const d of this.#known.keys()) if (!next.has(d)) this.#log(`domain ${d} released`);
    for (const d of next.keys()) if (!this.#known.has(d)) this.#log(`domain ${d} introduced`);
    this.#known = next;
    for (const dom of this.all()) {
      const info = next.get(dom.domid);
      if (info === undefined || domainState(info) === "dying") this.#onGone(dom);
    }
  }

  /** No more refreshes (the daemon stops); unfollow() closes the watches. */
  stopFollowing(): void {
    this.#following = false;
    if (this.#refreshTimer !== undefined) clearTimeout(this.#refreshTimer);
  }

  async unfollow(): Promise<void> {
    this.stopFollowing();
    await Promise.all(this.#watches.map((w) => w.close().catch(() => undefined)));
  }
}

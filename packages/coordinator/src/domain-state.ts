// A domain's state from its getinfo flags, decoded in one place: whether it can be suspended,
// resumed, is ours to wait on, or has gone wrong. Everything above (waits, the daemon's checks and
// status, recovery) asks here instead of reading the flags itself.
import { isXenError, type DomainInfo, type XenBinding } from "@fastsuspend/xen";

import { CoordinatorError } from "./errors";

/** Dying first (a dying domain may still show shut down), then shut down by reason, then paused. */
export type DomainState = "running" | "paused" | "suspended" | "crashed" | "shutdown" | "dying";

export function domainState(info: DomainInfo): DomainState {
  if (info.dying) return "dying";
  if (info.shutdown) {
    if (info.shutdownReasonName === "suspend") return "suspended";
    return info.shutdownReasonName === "crash" ? "crashed" : "shutdown";
  }
  return info.paused ? "paused" : "running";
}

/** The shutdown reason as text: its name, or "reason N" for a code Xen added after us. */
export function shutdownReasonText(info: DomainInfo): string {
  return info.shutdownReasonName ?? `reason ${String(info.shutdownReason)}`;
}

/**
 * For people and the daemon's status: running, paused, suspended, dying, "shutdown (REASON)"
 * (crash included), or gone (no info).
 */
export function domainStateText(info: DomainInfo | undefined): string {
  if (info === undefined) return "gone";
  const st = domainState(info);
  return st === "crashed" || st === "shutdown" ? `shutdown (${shutdownReasonText(info)})` : st;
}

export type WaitState = "suspended" | "running";

/** Throws ENODOMAIN, EDYING or EDOMAIN, naming the domain and what happened, if it can no longer suspend. */
export function domainWaitState(xen: XenBinding, domid: number, while_: string): WaitState {
  let info: DomainInfo;
  try {
    info = xen.getInfo(domid);
  } catch (err) {
    if (isXenError(err, "ESRCH")) throw new CoordinatorError("ENODOMAIN", domid, `domain ${domid} was destroyed ${while_}`, { cause: err });
    throw err;
  }
  switch (domainState(info)) {
    case "dying":
      throw new CoordinatorError("EDYING", domid, `domain ${domid} is dying (being destroyed) ${while_}`);
    case "suspended":
      return "suspended";
    case "crashed":
      throw new CoordinatorError("EDOMAIN", domid, `domain ${domid} crashed ${while_}`);
    case "shutdown":
      throw new CoordinatorError("EDOMAIN", domid, `domain ${domid} shut down (${shutdownReasonText(info)}) ${while_}`);
    case "running":
    case "paused":
      return "running";
  }
}

/** True if the domain exists and is shut down with reason suspend. */
export function isSuspended(xen: XenBinding, domid: number): boolean {
  try {
    return domainState(xen.getInfo(domid)) === "suspended";
  } catch (err) {
    if (isXenError(err, "ESRCH")) return false;
    throw err;
  }
}

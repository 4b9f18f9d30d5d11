// Reading a domain's state while waiting for it: suspended, still running, or gone wrong.
import { isXenError, type DomainInfo, type XenBinding } from "@fastsuspend/xen";

import { CoordinatorError } from "./errors";

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
  if (info.dying) throw new CoordinatorError("EDYING", domid, `domain ${domid} is dying (being destroyed) ${while_}`);
  if (!info.shutdown) return "running";
  if (info.shutdownReasonName === "suspend") return "suspended";
  const reason = info.shutdownReasonName ?? `reason ${String(info.shutdownReason)}`;
  const what = reason === "crash" ? "crashed" : `shut down (${reason})`;
  throw new CoordinatorError("EDOMAIN", domid, `domain ${domid} ${what} ${while_}`);
}

/** True if the domain exists and is shut down with reason suspend. */
export function isSuspended(xen: XenBinding, domid: number): boolean {
  try {
    const info = xen.getInfo(domid);
    return info.shutdown && info.shutdownReasonName === "suspend" && !info.dying;
  } catch (err) {
    if (isXenError(err, "ESRCH")) return false;
    throw err;
  }
}

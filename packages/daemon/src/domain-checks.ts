// The checks before the daemon touches a domain: is it running (not dying, shut down, suspended
// or paused by someone else), and is another tool at work on it (its request pending in
// control/shutdown, an xl or libxl-save-helper process naming it). Requests refuse such a domain;
// a loop skips the cycle.
import { controlShutdownKey, domainState, shutdownReasonText } from "@fastsuspend/coordinator";
import type { DomainInfo } from "@fastsuspend/xen";

import type { DaemonContext } from "./context";
import { DaemonError } from "./protocol";

/** Refuses a domain that is dying, shut down, already suspended (by anyone) or paused (by another tool). */
export function assertRunning(info: DomainInfo, what: string): void {
  const d = info.domid;
  switch (domainState(info)) {
    case "dying":
      throw new DaemonError("EDYING", `${what}: domain ${d} is dying (being destroyed)`);
    case "suspended":
      throw new DaemonError("ESUSPENDED", `${what}: domain ${d} is already suspended (by another tool, e.g. xl save, or an earlier suspend request)`);
    case "crashed":
    case "shutdown":
      throw new DaemonError("EDOMAIN", `${what}: domain ${d} is shut down (${shutdownReasonText(info)})`);
    case "paused":
      throw new DaemonError("EBUSY", `${what}: domain ${d} is paused (xl pause, or another tool is working on it)`);
    case "running":
      return;
  }
}

/**
 * Another tool at work on the domain: its request pending in control/shutdown (we leave it empty
 * between requests), or an xl/libxl-save-helper process naming it. What it is, or undefined.
 */
export async function otherTool(ctx: DaemonContext, domid: number): Promise<string | undefined> {
  const v = await ctx.xs.tryReadString(controlShutdownKey(domid)).catch(() => undefined);
  if (v !== undefined && v !== "") return `a request from another tool is pending in control/shutdown ("${v.slice(0, 16)}")`;
  // Scanned for every guest, those with a suspend channel too. For them libxl takes the suspend
  // lock, but with a non-blocking F_SETLK: an xl started just before our cycle that reaches its
  // lock while we hold ours fails at once ("Can't fcntl F_SETLK lock file for suspend event
  // channel"). Seen by its process, it makes us skip the cycle instead, and xl gets the lock.
  ctx.metrics.toolstackChecks.inc({ how: "scan" });
  const p = await ctx.settings.toolstackUser(domid, await ctx.domains.name(domid));
  return p === undefined ? undefined : `the toolstack is working on it: ${p}`;
}

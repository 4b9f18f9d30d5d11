// Picking a path: the fastest the domain offers, or the one asked for if it is available.
import type { Capabilities } from "./detect";
import { CoordinatorError } from "./errors";
import { allPathNames, parsePath, pathName, type PathName } from "./paths";

/** Throws for a domain no path can work on: ECONTROLDOMAIN, ENODOMAIN, EDYING. */
export function assertSuspendable(caps: Capabilities): void {
  const d = caps.domid;
  if (caps.isDom0) throw new CoordinatorError("ECONTROLDOMAIN", d, "domain 0 is the control domain: it cannot be suspended from here");
  if (!caps.exists) throw new CoordinatorError("ENODOMAIN", d, `domain ${d} does not exist`);
  if (caps.dying) throw new CoordinatorError("EDYING", d, `domain ${d} is dying`);
}

export function choosePath(caps: Capabilities, override?: string): PathName {
  assertSuspendable(caps);
  const d = caps.domid;
  const available = caps.paths.join(", ") || "none";
  if (override !== undefined) {
    const parsed = parsePath(override);
    if (parsed === undefined) {
      throw new CoordinatorError("ENOPATH", d, `unknown path "${override}" (known: ${allPathNames().join(", ")})`);
    }
    const name = pathName(parsed);
    if (!caps.paths.includes(name)) {
      const why = parsed.trigger === "evtchn" ? `; guest suspend channel: ${caps.guestChannel.status}` : "";
      const why2 = parsed.notification === "virq" ? `; hypervisor suspend_notify: ${caps.hvNotify.detail}` : "";
      throw new CoordinatorError("ENOPATH", d, `path ${name} is not available for domain ${d} (available: ${available}${why}${why2})`);
    }
    return name;
  }
  const first = caps.paths[0];
  if (first === undefined) throw new CoordinatorError("ENOPATH", d, `no suspend path is available for domain ${d}`);
  return first;
}

/**
 * Where to go after `failed` failed. A timeout blames the trigger (the guest did not act on it), so
 * paths with another trigger come first; a setup failure blames the notification.
 */
export function fallbackOrder(caps: Capabilities, failed: PathName, blame: "trigger" | "notification"): PathName[] {
  const f = parsePath(failed);
  if (f === undefined) return [];
  const rest = caps.paths.filter((p) => p !== failed);
  const differs = (p: PathName): boolean => {
    const q = parsePath(p);
    return q !== undefined && (blame === "trigger" ? q.trigger !== f.trigger : q.notification !== f.notification);
  };
  return [...rest.filter(differs), ...rest.filter((p) => !differs(p))];
}

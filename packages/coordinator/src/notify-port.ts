// The port the stock-Xen `evtchn` notification allocates in the guest's event-channel table
// (unbound, offered to dom0), remembered so that the next session reuses it. dom0 cannot close a
// port in another domain's table: allocating one per session leaked one per CLI run, idle re-open,
// rebind or fallback, until the guest could allocate no more (vCPU online, device hotplug fail).
//
// Remembered in the guest's own xenstore home, so that it goes with the domain (libxl removes the
// whole tree on destroy, and a restored or migrated guest is a new domain with a new table), in a
// node only dom0 may read or write. The guest owns its home and could create the node first, so a
// port is reused only if the node's sole permission entry is dom0's, and never if it is the port
// the guest advertises as its suspend channel (binding that would lock libxl out of it).
import { parsePort } from "@fastsuspend/xenstore";

import { domainPath, suspendChannelKey, type XenstoreLike } from "./xs";

export const notifyPortKey = (domid: number): string => `${domainPath(domid)}/fastsuspend-notify-port`;

const DOM0_ONLY = [{ domid: 0, access: "none" as const }];

/** A port remembered by an earlier session that may be bound again (the bind itself is the proof). */
export async function rememberedNotifyPort(xs: XenstoreLike, domid: number): Promise<number | undefined> {
  const key = notifyPortKey(domid);
  const [raw, channel] = await Promise.all([xs.tryReadString(key), xs.tryReadString(suspendChannelKey(domid))]);
  const port = raw === undefined ? undefined : parsePort(raw);
  if (port === undefined) return undefined;
  if (channel !== undefined && parsePort(channel) === port) return undefined;
  const perms = await xs.getPermissions(key).catch(() => undefined);
  if (perms?.length !== 1 || perms[0]?.domid !== 0 || perms[0].access !== "none") return undefined;
  return port;
}

/**
 * Records `port` for the next session. Best effort: a failure only costs one port next time, and
 * a node the guest changed before we restricted it is removed rather than trusted.
 */
export async function rememberNotifyPort(xs: XenstoreLike, domid: number, port: number): Promise<void> {
  const key = notifyPortKey(domid);
  try {
    // Created under the guest's home, the node is first the guest's (xenstored inherits the
    // parent's permissions): restrict it, then check that what is there is still ours.
    await xs.write(key, String(port));
    await xs.setPermissions(key, DOM0_ONLY);
    if ((await xs.tryReadString(key)) !== String(port)) await xs.write(key, "");
  } catch {
    // not remembered: the next session allocates a port of its own
  }
}

// What a domain offers: its state, the guest's suspend channel (verified by binding it), whether it
// handles xenstore suspend requests, and whether the hypervisor has the suspend_notify domctl.
import { isXenError, type DomainInfo, type XenBinding } from "@fastsuspend/xen";
import { parsePort } from "@fastsuspend/xenstore";

import { errorText } from "./errors";
import { probeHvNotify } from "./hv-notify";
import { orderedPaths, type Notification, type PathName, type Trigger } from "./paths";
import { featureSuspendKey, suspendChannelKey, type XenstoreLike } from "./xs";

export type ChannelStatus =
  /** A port that dom0 could bind interdomain (then unbound again). */
  | "ok"
  /** No key, or the key is empty (libxl creates it empty; Linux 6.1 leaves it so). */
  | "absent"
  /** Not a canonical decimal port: the guest wrote something else. */
  | "garbage"
  /** A well-formed port that cannot be bound from dom0 (stale, closed, not offered to us). */
  | "unbindable"
  /** Not verified: another process holds the suspend lock (and maybe the channel). */
  | "locked";

export interface GuestChannel {
  status: ChannelStatus;
  port?: number;
  /** The raw key (untrusted guest text, truncated), for diagnostics. */
  raw?: string;
  detail?: string;
}

export interface Capabilities {
  domid: number;
  exists: boolean;
  isDom0: boolean;
  dying: boolean;
  hvm: boolean;
  /** Shutdown reason name if shut down (e.g. "suspend"), else null. */
  shutdown: string | null;
  paused: boolean;
  guestChannel: GuestChannel;
  /** control/feature-suspend = 1: the guest said at boot that it handles control/shutdown=suspend. */
  featureSuspend: boolean;
  /**
   * The guest can be asked through control/shutdown: a PV guest, or an HVM/PVH one whose PV
   * drivers are up (HVM_PARAM_CALLBACK_IRQ set, libxl's test). Not feature-suspend: the guest
   * writes that node once, at boot, and a restored or migrated domain's xenstore has lost it.
   */
  pvControl: boolean;
  /** Why pvControl is what it is, for `info` (e.g. Xen did not answer and feature-suspend decided). */
  pvControlDetail: string;
  hvNotify: { available: boolean; detail: string };
  triggers: Trigger[];
  notifications: Notification[];
  /** Every available path, fastest first. */
  paths: PathName[];
}

export interface DetectOptions {
  /** The caller already holds the domain's suspend lock (a session): verify without taking it. */
  lockHeld?: boolean;
}

const MAX_RAW = 64;

function readInfo(xen: XenBinding, domid: number): DomainInfo | undefined {
  try {
    return xen.getInfo(domid);
  } catch (err) {
    if (isXenError(err, "ESRCH")) return undefined;
    throw err;
  }
}

/** Binds the guest's port from dom0 and unbinds it again: the only proof that it is usable. */
function verifyChannel(xen: XenBinding, domid: number, port: number): GuestChannel {
  const h = xen.openEvtchn({ poll: false });
  try {
    const local = h.bindInterdomain(domid, port);
    h.unbind(local); // the guest's end goes back to unbound, offered to us again
    return { status: "ok", port };
  } catch (err) {
    return { status: "unbindable", port, detail: errorText(err) };
  } finally {
    h.close();
  }
}

export async function readGuestChannel(
  xen: XenBinding,
  xs: XenstoreLike,
  domid: number,
  opts: DetectOptions = {},
): Promise<GuestChannel> {
  const raw = await xs.tryReadString(suspendChannelKey(domid));
  if (raw === undefined || raw === "") return { status: "absent", ...(raw === undefined ? {} : { raw }) };
  const shown = raw.length > MAX_RAW ? `${raw.slice(0, MAX_RAW)}...` : raw;
  const port = parsePort(raw);
  if (port === undefined) return { status: "garbage", raw: shown };
  if (opts.lockHeld === true) return { ...verifyChannel(xen, domid, port), raw: shown };
  // Binding it while libxl holds the lock could make libxl's own bind fail: take the lock first.
  let lock;
  try {
    lock = xen.lockSuspend(domid);
  } catch (err) {
    if (isXenError(err, "EAGAIN")) return { status: "locked", port, raw: shown, detail: "suspend lock held by another process" };
    throw err;
  }
  try {
    return { ...verifyChannel(xen, domid, port), raw: shown };
  } finally {
    lock.release();
  }
}

/**
 * An HVM/PVH guest's PV drivers are up: HVM_PARAM_CALLBACK_IRQ is set (libxl's
 * libxl__domain_pvcontrol_available). Should Xen not answer (the domain going away), the guest's
 * own word at boot, feature-suspend, is all there is, and the detail says so.
 */
function pvDriversUp(xen: XenBinding, domid: number, featureSuspend: boolean): { up: boolean; detail: string } {
  try {
    const irq = xen.hvmCallbackIrq(domid);
    return irq !== 0n ? { up: true, detail: "HVM_PARAM_CALLBACK_IRQ is set" } : { up: false, detail: "HVM_PARAM_CALLBACK_IRQ is 0" };
  } catch (err) {
    return { up: featureSuspend, detail: `HVM_PARAM_CALLBACK_IRQ unreadable (${errorText(err)}): control/feature-suspend ${featureSuspend ? "= 1" : "not 1"} decided` };
  }
}

export async function detect(xen: XenBinding, xs: XenstoreLike, domid: number, opts: DetectOptions = {}): Promise<Capabilities> {
  const info = readInfo(xen, domid);
  const base = {
    domid,
    exists: info !== undefined,
    isDom0: domid === 0,
    dying: info?.dying ?? false,
    hvm: info?.hvm ?? false,
    shutdown: info?.shutdownReasonName ?? (info?.shutdown === true ? String(info.shutdownReason) : null),
    paused: info?.paused ?? false,
  };
  if (info === undefined || domid === 0 || info.dying) {
    return {
      ...base,
      guestChannel: { status: "absent" },
      featureSuspend: false,
      pvControl: false,
      pvControlDetail: "not probed",
      hvNotify: { available: false, detail: "not probed" },
      triggers: [],
      notifications: [],
      paths: [],
    };
  }
  const guestChannel = await readGuestChannel(xen, xs, domid, opts);
  const featureSuspend = (await xs.tryReadString(featureSuspendKey(domid))) === "1";
  const hvNotify = probeHvNotify(xen, domid);
  const drivers = info.hvm ? pvDriversUp(xen, domid, featureSuspend) : { up: true, detail: "PV guest" };
  const pvControl = drivers.up;

  const triggers: Trigger[] = [];
  if (guestChannel.status === "ok") triggers.push("evtchn");
  // PV guests always have the xenstore control protocol; HVM only with PV drivers.
  if (pvControl) triggers.push("xenstore");
  // xc_domain_shutdown(SUSPEND) is only right for HVM without PV drivers (libxl's rule).
  if (!pvControl) triggers.push("shutdown");

  const notifications: Notification[] = [];
  if (hvNotify.available) notifications.push("virq");
  notifications.push("evtchn", "watch", "poll");

  return { ...base, guestChannel, featureSuspend, pvControl, pvControlDetail: drivers.detail, hvNotify, triggers, notifications, paths: orderedPaths(triggers, notifications) };
}

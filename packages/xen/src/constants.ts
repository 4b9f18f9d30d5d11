// Values from the Xen 4.17 public headers (xen/sched.h, xen/xen.h, xen/domctl.h).

export const SHUTDOWN_REASONS = {
  poweroff: 0,
  reboot: 1,
  suspend: 2,
  crash: 3,
  watchdog: 4,
  soft_reset: 5,
} as const;

export type ShutdownReasonName = keyof typeof SHUTDOWN_REASONS;

const NAMES = Object.keys(SHUTDOWN_REASONS) as ShutdownReasonName[];

export function shutdownReasonName(code: number): ShutdownReasonName | null {
  return NAMES.find((n) => SHUTDOWN_REASONS[n] === code) ?? null;
}

export function shutdownReasonCode(reason: ShutdownReasonName | number): number {
  return typeof reason === "number" ? reason : SHUTDOWN_REASONS[reason];
}

/** Global VIRQ raised on domain shutdown/death; one consumer (xenstored). */
export const VIRQ_DOM_EXC = 3;
export const NR_VIRQS = 24;
export const DOMID_FIRST_RESERVED = 0x7ff0;
export const DOMID_SELF = 0x7ff0;
/** The highest domid Xen gives a domain: from DOMID_FIRST_RESERVED up they are special (DOMID_SELF...). */
export const DOMID_MAX = DOMID_FIRST_RESERVED - 1;

/** Whether `domid` can name a domain: an integer in [0, DOMID_MAX]. The one check of the bound. */
export function isDomid(domid: unknown): domid is number {
  return typeof domid === "number" && Number.isInteger(domid) && domid >= 0 && domid <= DOMID_MAX;
}

export const XEN_DOMCTL_pausedomain = 3;
export const XEN_DOMCTL_unpausedomain = 4;
export const XEN_DOMCTL_getdomaininfo = 5;
export const XEN_DOMCTL_subscribe = 29;

/** struct xen_domctl layout in 4.17 (checked against the headers by the addon). */
export const DOMCTL_LAYOUT_4_17 = {
  interfaceVersion: 0x15,
  size: 144,
  payloadOffset: 16,
  payloadSize: 128,
} as const;

/** libxenguest's XEN_RUN_DIR "/suspend-evtchn-%d.lock". */
export const SUSPEND_LOCK_DIR = "/var/run/xen";

export function suspendLockPath(domid: number, dir: string = SUSPEND_LOCK_DIR): string {
  return `${dir}/suspend-evtchn-${domid}.lock`;
}

/** libxl's XEN_LIB_DIR, where it keeps per-domain userdata and their lock. */
export const XEN_LIB_DIR = "/var/lib/xen";

/** libxl__userdata_path(domid, "domain-userdata-lock", "l"): libxl's per-domain lock file. */
export function toolstackLockPath(domid: number, uuid: string, dir: string = XEN_LIB_DIR): string {
  return `${dir}/userdata-l.${domid}.${uuid}.domain-userdata-lock`;
}

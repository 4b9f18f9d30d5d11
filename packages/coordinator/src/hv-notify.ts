// XEN_DOMCTL_suspend_notify (the fastsuspend hypervisor series, hypervisor-patches/INTERFACE.md):
// marshalling of its union member and the three sub-ops. Stock Xen answers ENOSYS.
import { isXenError, type XenBinding } from "@fastsuspend/xen";

export const XEN_DOMCTL_suspend_notify = 0x4653;

export const HV_NOTIFY_OP = { register: 1, unregister: 2, query: 3 } as const;

export const HV_NOTIFY_EV = { suspend: 0x1, shutdown: 0x2, crash: 0x4, dying: 0x8 } as const;
export const HV_NOTIFY_EV_ALL = 0xf;

/** Do not raise VIRQ_DOM_EXC when our notification was delivered: only while the suspend is ours (it would starve a libxl waiting for @releaseDomain). */
export const HV_NOTIFY_F_NO_DOM_EXC = 0x1;

export const HV_NOTIFY_MAX_REGS = 8;

// Offsets inside xen_domctl.u (INTERFACE.md, "u.suspend_notify").
const OFF_OP = 0;
const OFF_MASK = 4;
const OFF_FLAGS = 8;
const OFF_PORT = 12;
const OFF_NR = 16;
const OFF_REGS = 24;
const REG_SIZE = 12;
/** Where REGISTER returns the cookie and UNREGISTER takes it (the fake host reads it too). */
export const HV_NOTIFY_OFF_COOKIE = OFF_REGS + REG_SIZE * HV_NOTIFY_MAX_REGS; // 120
const OFF_COOKIE = HV_NOTIFY_OFF_COOKIE;
const PAYLOAD_SIZE = OFF_COOKIE + 8; // 128; pad (20) stays 0

export interface HvNotifyRegistration {
  registrant: number;
  flags: number;
  port: number;
  mask: number;
}

function payload(op: number, fields: { mask?: number; flags?: number; port?: number; cookie?: bigint } = {}): Buffer {
  const u = Buffer.alloc(PAYLOAD_SIZE);
  u.writeUInt32LE(op, OFF_OP);
  u.writeUInt32LE(fields.mask ?? 0, OFF_MASK);
  u.writeUInt32LE(fields.flags ?? 0, OFF_FLAGS);
  u.writeUInt32LE(fields.port ?? 0, OFF_PORT);
  u.writeBigUInt64LE(fields.cookie ?? 0n, OFF_COOKIE);
  return u;
}

/** What REGISTER returns: the port to bind, and the cookie that UNREGISTER needs with it. */
export interface HvNotifyHandle {
  port: number;
  cookie: bigint;
}

/** REGISTER: a Xen-owned port in *our* table, signalled on the masked events of `domid`. Bind it within 30 s. */
export function hvNotifyRegister(xen: XenBinding, domid: number, mask: number, flags = 0): HvNotifyHandle {
  const u = xen.domctl(XEN_DOMCTL_suspend_notify, domid, payload(HV_NOTIFY_OP.register, { mask, flags }));
  return { port: u.readUInt32LE(OFF_PORT), cookie: u.readBigUInt64LE(OFF_COOKIE) };
}

/**
 * UNREGISTER by port *and* cookie: a port number alone may by now name another registration
 * (Xen frees a registration's port when it ends and hands the number out again).
 */
export function hvNotifyUnregister(xen: XenBinding, domid: number, port: number, cookie: bigint): void {
  xen.domctl(XEN_DOMCTL_suspend_notify, domid, payload(HV_NOTIFY_OP.unregister, { port, cookie }));
}

export function hvNotifyQuery(xen: XenBinding, domid: number): HvNotifyRegistration[] {
  const u = xen.domctl(XEN_DOMCTL_suspend_notify, domid, payload(HV_NOTIFY_OP.query));
  // The count comes from the hypervisor, but bound it anyway: never read past regs[8].
  const nr = Math.min(u.readUInt32LE(OFF_NR), HV_NOTIFY_MAX_REGS);
  const regs: HvNotifyRegistration[] = [];
  for (let i = 0; i < nr; i++) {
    const o = OFF_REGS + REG_SIZE * i;
    regs.push({
      registrant: u.readUInt16LE(o),
      flags: u.readUInt16LE(o + 2),
      port: u.readUInt32LE(o + 4),
      mask: u.readUInt32LE(o + 8),
    });
  }
  return regs;
}

/** Errors that mean "this hypervisor has no usable suspend_notify", as opposed to a real failure. */
const ABSENT_CODES = ["ENOSYS", "EOPNOTSUPP", "EINVAL", "EPERM", "EACCES"];

export interface HvNotifyProbe {
  available: boolean;
  /** Why not (the errno), or how many registrations the target has. */
  detail: string;
}

/** Probes with a QUERY on `domid` (never dom0 itself: that is EINVAL by design). */
export function probeHvNotify(xen: XenBinding, domid: number): HvNotifyProbe {
  try {
    const regs = hvNotifyQuery(xen, domid);
    return { available: true, detail: `${regs.length} registration(s)` };
  } catch (err) {
    if (isXenError(err) && ABSENT_CODES.includes(err.code)) return { available: false, detail: err.code };
    if (isXenError(err)) return { available: false, detail: err.message };
    throw err;
  }
}

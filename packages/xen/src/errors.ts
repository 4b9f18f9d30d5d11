// Typed errors. The addon throws XenError instances directly (it is handed `makeXenError` at load
// time); the fake throws the same class with the same message shape.
import { constants as osConstants } from "node:os";

export interface XenErrorInit {
  /** The library call that failed, e.g. "xc_domain_getinfo". */
  call: string;
  /** Its arguments as text, e.g. "dom=7". */
  args: string;
  /** errno value (0 when the failure is not an errno, e.g. addon not built). */
  errno: number;
  /** errno name ("ESRCH") or an ERR_* code. */
  code: string;
  message?: string;
  /** What libxc logged about the failure, if anything. */
  detail?: string;
}

// glibc's strerror text for the codes this package produces, so the fake reads like the addon.
const STRERROR: Record<string, string> = {
  EPERM: "Operation not permitted",
  ENOENT: "No such file or directory",
  ESRCH: "No such process",
  EBADF: "Bad file descriptor",
  EAGAIN: "Resource temporarily unavailable",
  EACCES: "Permission denied",
  EBUSY: "Device or resource busy",
  EEXIST: "File exists",
  EINVAL: "Invalid argument",
  ENOSPC: "No space left on device",
  ENOSYS: "Function not implemented",
  ENOTCONN: "Transport endpoint is not connected",
  ETIMEDOUT: "Connection timed out",
  ECANCELED: "Operation canceled",
  EUSERS: "Too many users",
};

export function errnoNumber(code: string): number {
  return (osConstants.errno as Record<string, number | undefined>)[code] ?? 0;
}

export function formatXenMessage(call: string, args: string, code: string, detail?: string): string {
  const text = STRERROR[code];
  const base = `${call}(${args}): ${code}${text !== undefined ? ` (${text})` : ""}`;
  return detail !== undefined && detail !== "" ? `${base}: ${detail}` : base;
}

export class XenError extends Error {
  readonly call: string;
  readonly args: string;
  readonly errno: number;
  readonly code: string;
  readonly detail: string | undefined;

  constructor(init: XenErrorInit) {
    super(init.message ?? formatXenMessage(init.call, init.args, init.code, init.detail));
    this.name = "XenError";
    this.call = init.call;
    this.args = init.args;
    this.errno = init.errno;
    this.code = init.code;
    this.detail = init.detail === "" ? undefined : init.detail;
  }
}

/** A XenError for an errno name (used by the fake and the TS layer). */
export function xenError(call: string, args: string, code: string, detail?: string): XenError {
  return new XenError({ call, args, errno: errnoNumber(code), code, detail });
}

export function isXenError(err: unknown, code?: string): err is XenError {
  return err instanceof XenError && (code === undefined || err.code === code);
}

export type XenUnavailableReason = "no-xen" | "addon-not-built" | "addon-load-failed" | "not-root";

/** openXen() could not give a working binding: says why and what to do. */
export class XenUnavailableError extends XenError {
  readonly reason: XenUnavailableReason;

  constructor(reason: XenUnavailableReason, init: XenErrorInit) {
    super(init);
    this.name = "XenUnavailableError";
    this.reason = reason;
  }
}

/** The factory the addon calls for every failure: (call, args, errno, code, message, detail). */
export function makeXenError(
  call: string,
  args: string,
  errno: number,
  code: string,
  message: string,
  detail: string,
): XenError {
  return new XenError({ call, args, errno, code, message, detail });
}

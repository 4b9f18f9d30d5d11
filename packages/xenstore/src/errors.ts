// Typed errors. Every failure a caller can act on has its own class, and the
// xenstored ones keep the errno *name* the daemon sent (the wire carries names,
// not numbers) together with the operation and path, so a log line reads
// like "xenstore read /local/domain/7/x: ENOENT".

/** errno names listed in xs_wire.h, plus EQUOTA which oxenstored sends for quota hits. */
export const KNOWN_ERRNOS = [
  "EINVAL",
  "EACCES",
  "EEXIST",
  "EISDIR",
  "ENOENT",
  "ENOMEM",
  "ENOSPC",
  "EIO",
  "ENOTEMPTY",
  "ENOSYS",
  "EROFS",
  "EBUSY",
  "EAGAIN",
  "EISCONN",
  "E2BIG",
  "EPERM",
  "EQUOTA",
] as const;

export type KnownErrno = (typeof KNOWN_ERRNOS)[number];
/** A daemon may send a name outside the list; it is kept verbatim rather than lost. */
export type XenstoreErrno = KnownErrno | (string & {});

/** Base class: `instanceof XenstoreBaseError` catches everything this package throws. */
export class XenstoreBaseError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** xenstored answered XS_ERROR. */
export class XenstoreError extends XenstoreBaseError {
  constructor(
    readonly errno: XenstoreErrno,
    readonly op: string,
    readonly subject?: string,
  ) {
    super(`xenstore ${op}${subject === undefined ? "" : ` ${subject}`}: ${errno}`);
  }
}

/** True when `err` is an XS_ERROR reply carrying this errno name. */
export function isXenstoreErrno(err: unknown, errno: XenstoreErrno): err is XenstoreError {
  return err instanceof XenstoreError && err.errno === errno;
}

/** The request would exceed XENSTORE_PAYLOAD_MAX; it was NOT sent (xenstored would drop the connection). */
export class XenstorePayloadTooLargeError extends XenstoreBaseError {
  constructor(
    readonly op: string,
    readonly subject: string | undefined,
    readonly size: number,
    readonly limit: number,
  ) {
    super(
      `xenstore ${op}${subject === undefined ? "" : ` ${subject}`}: payload of ${size} bytes exceeds ${limit} (not sent)`,
    );
  }
}

/** A request argument is unusable (NUL in a path, bad domid...); nothing was sent. */
export class XenstoreInvalidArgumentError extends XenstoreBaseError {}

/** No reply within the request's timeout. The request may still have been applied. */
export class XenstoreTimeoutError extends XenstoreBaseError {
  constructor(
    readonly op: string,
    readonly subject: string | undefined,
    readonly timeoutMs: number,
  ) {
    super(`xenstore ${op}${subject === undefined ? "" : ` ${subject}`}: no reply within ${timeoutMs} ms`);
  }
}

/** The connection closed with the request outstanding, or the client was closed. */
export class XenstoreClosedError extends XenstoreBaseError {}

/** Could not reach any xenstored endpoint. */
export class XenstoreConnectError extends XenstoreBaseError {}

/** The daemon sent something that does not parse; the connection is dropped. */
export class XenstoreProtocolError extends XenstoreBaseError {}

/** A transaction still conflicted (EAGAIN) after the allowed number of attempts. */
export class XenstoreTransactionConflictError extends XenstoreError {
  constructor(readonly attempts: number) {
    super("EAGAIN", "transaction", `(gave up after ${attempts} attempts)`);
  }
}

// Coordinator failures: each one names the domain and says what happened, in one line, and has a
// code that says which case it is, so that callers (the CLI's exit codes, the daemon's wire codes
// and metrics) decide by code and never by the text.
export const COORDINATOR_ERROR_CODES = [
  /** No such domain (never was, or destroyed). */
  "ENODOMAIN",
  /** Domain 0 (or our own domain): the control domain cannot be suspended from here. */
  "ECONTROLDOMAIN",
  /** The domain is dying (being destroyed). */
  "EDYING",
  /** The domain crashed or shut down for a reason other than suspend. */
  "EDOMAIN",
  /** The domain is already suspended (resume it first). */
  "ESUSPENDED",
  /** The domain is not suspended: nothing to resume. */
  "ENOTSUSPENDED",
  /** A suspend or resume of this session is already in flight. */
  "EINPROGRESS",
  /** The suspend was interrupted (a signal, the daemon stopping); the guest is left running. */
  "EINTERRUPTED",
  /** Another process (libxl, xl save) holds the domain's suspend lock. */
  "ELOCKED",
  /** The guest did not suspend in time (the request was withdrawn where possible). */
  "ETIMEDOUT",
  /** The requested path is not available for this domain. */
  "ENOPATH",
  /** The session was used out of order: opened twice, or used before open(). */
  "ESESSION",
  /** The session is closed. */
  "ECLOSED",
] as const;
export type CoordinatorErrorCode = (typeof COORDINATOR_ERROR_CODES)[number];

/** The codes that say the domain itself is not there to work on: gone, dying, crashed or shut down. */
const DOMAIN_ENDED: readonly CoordinatorErrorCode[] = ["ENODOMAIN", "EDYING", "EDOMAIN"];

export class CoordinatorError extends Error {
  readonly code: CoordinatorErrorCode;
  readonly domid: number;

  constructor(code: CoordinatorErrorCode, domid: number, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "CoordinatorError";
    this.code = code;
    this.domid = domid;
  }
}

export interface TimeoutDetails {
  path: string;
  timeoutMs: number;
  /** control/shutdown was still "suspend" and we cleared it (xenstore trigger). */
  withdrawn: boolean;
  /** The guest had taken the request (or the event) and suspended after all: we resumed it. */
  resumedLateSuspend: boolean;
  /** An event-channel request cannot be taken back: the guest may still act on it later. */
  unrevocable: boolean;
}

export class SuspendTimeoutError extends CoordinatorError {
  readonly details: TimeoutDetails;

  constructor(domid: number, details: TimeoutDetails) {
    const what = [
      details.withdrawn ? "request withdrawn" : undefined,
      details.resumedLateSuspend ? "it suspended late and was resumed" : undefined,
      details.unrevocable ? "the event-channel request cannot be withdrawn" : undefined,
    ].filter((s) => s !== undefined);
    super(
      "ETIMEDOUT",
      domid,
      `domain ${domid} did not suspend within ${details.timeoutMs} ms via ${details.path}` +
        `${what.length > 0 ? ` (${what.join("; ")})` : ""}; it is left running`,
    );
    this.name = "SuspendTimeoutError";
    this.details = details;
  }
}

export function isCoordinatorError(err: unknown, code?: CoordinatorErrorCode): err is CoordinatorError {
  return err instanceof CoordinatorError && (code === undefined || err.code === code);
}

/** The domain is gone, dying, crashed or shut down: nothing more to do on it. */
export function isDomainEnded(err: unknown): boolean {
  return isCoordinatorError(err) && DOMAIN_ENDED.includes(err.code);
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

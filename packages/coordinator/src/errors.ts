// Coordinator failures: each one names the domain and says what happened, in one line.
export type CoordinatorErrorCode =
  /** Another process (libxl, xl save) holds the domain's suspend lock. */
  | "ELOCKED"
  /** The guest did not suspend in time (the request was withdrawn where possible). */
  | "ETIMEDOUT"
  /** The domain crashed, shut down for another reason, is dying or was destroyed. */
  | "EDOMAIN"
  /** No such domain, dom0, or a state the operation cannot start from. */
  | "ESTATE"
  /** The requested path is not available for this domain. */
  | "ENOPATH"
  /** The session is closed. */
  | "ECLOSED";

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

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

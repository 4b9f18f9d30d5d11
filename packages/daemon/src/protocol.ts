// The daemon's wire protocol: newline-delimited JSON over a unix socket. One request per line,
// `{id, op, ...params}`; one response per request, `{id, ok: true, result}` or
// `{id, ok: false, error: {code, message}}`. Requests on one connection may be answered out of order
// (a status while a suspend of another domain is running): match them by id.
import { parsePath } from "@fastsuspend/coordinator";

/** Longest request line accepted (bytes, without the newline). Over it: ETOOBIG, then the connection is closed. */
export const MAX_LINE_BYTES = 64 * 1024;
export const DEFAULT_SOCKET_PATH = "/run/fastsuspend/daemon.sock";
export const DEFAULT_RUN_DIR = "/run/fastsuspend";
export const SOCKET_ENV = "FASTSUSPEND_SOCKET";

export const OPS = ["suspend", "resume", "checkpoint.start", "checkpoint.stop", "status", "metrics"] as const;
export type Op = (typeof OPS)[number];

export type RequestId = string | number;

export type DaemonErrorCode =
  /** The line is not JSON, or not a JSON object. */
  | "EPARSE"
  /** A field is missing, has the wrong type or is out of range; or an unknown field. */
  | "EINVAL"
  /** `op` is not one of OPS. */
  | "EUNKNOWNOP"
  /** The request line is longer than MAX_LINE_BYTES (the connection is closed after this). */
  | "ETOOBIG"
  /** No such domain. */
  | "ENODOMAIN"
  /** The domain is busy: a checkpoint loop runs, or another tool (xl) holds or suspended it. */
  | "EBUSY"
  /** Coordinator errors, passed through. */
  | "ELOCKED"
  | "ETIMEDOUT"
  | "EDOMAIN"
  | "ESTATE"
  | "ENOPATH"
  | "ECLOSED"
  /** The daemon is stopping. */
  | "ESHUTDOWN"
  | "EINTERNAL";

export interface SuspendRequest { op: "suspend"; domid: number; path?: string; timeoutMs?: number }
export interface ResumeRequest { op: "resume"; domid: number }
export interface CheckpointStartRequest { op: "checkpoint.start"; domid: number; intervalMs: number; count?: number; path?: string; timeoutMs?: number }
export interface CheckpointStopRequest { op: "checkpoint.stop"; domid: number }
export interface StatusRequest { op: "status"; domid?: number }
export interface MetricsRequest { op: "metrics" }

export type Request = SuspendRequest | ResumeRequest | CheckpointStartRequest | CheckpointStopRequest | StatusRequest | MetricsRequest;

export interface OkResponse { id: RequestId | null; ok: true; result: unknown }
export interface ErrorResponse { id: RequestId | null; ok: false; error: { code: DaemonErrorCode; message: string } }
export type Response = OkResponse | ErrorResponse;

export class DaemonError extends Error {
  readonly code: DaemonErrorCode;
  constructor(code: DaemonErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "DaemonError";
    this.code = code;
  }
}

export function isDaemonError(err: unknown, code?: DaemonErrorCode): err is DaemonError {
  return err instanceof DaemonError && (code === undefined || err.code === code);
}

/** What the request line parser gives back: the id (so even a bad request gets a matched error) and the request or an error. */
export type Parsed = { id: RequestId | null; request: Request; error?: undefined } | { id: RequestId | null; request?: undefined; error: DaemonError };

const MAX_DOMID = 0x7fef;
const MAX_TIMEOUT_MS = 600_000;
const MAX_INTERVAL_MS = 3_600_000;
const MAX_COUNT = 100_000_000;

/** Allowed fields per op (besides id and op). */
const FIELDS: Record<Op, readonly string[]> = {
  suspend: ["domid", "path", "timeoutMs"],
  resume: ["domid"],
  "checkpoint.start": ["domid", "intervalMs", "count", "path", "timeoutMs"],
  "checkpoint.stop": ["domid"],
  status: ["domid"],
  metrics: [],
};

function isOp(s: string): s is Op {
  return (OPS as readonly string[]).includes(s);
}

function int(obj: Record<string, unknown>, name: string, min: number, max: number, required: true): number;
function int(obj: Record<string, unknown>, name: string, min: number, max: number, required: false): number | undefined;
function int(obj: Record<string, unknown>, name: string, min: number, max: number, required: boolean): number | undefined {
  const v = obj[name];
  if (v === undefined) {
    if (required) throw new DaemonError("EINVAL", `"${name}" is required`);
    return undefined;
  }
  if (typeof v !== "number" || !Number.isInteger(v)) throw new DaemonError("EINVAL", `"${name}" must be an integer, got ${describe(v)}`);
  if (v < min || v > max) throw new DaemonError("EINVAL", `"${name}" must be in [${min}, ${max}], got ${v}`);
  return v;
}

function domidField(obj: Record<string, unknown>, required: boolean): number | undefined {
  const d = required ? int(obj, "domid", 0, MAX_DOMID, true) : int(obj, "domid", 0, MAX_DOMID, false);
  if (d === 0) throw new DaemonError("EINVAL", "domain 0 is the control domain: it cannot be suspended or checkpointed");
  return d;
}

function pathField(obj: Record<string, unknown>): string | undefined {
  const v = obj.path;
  if (v === undefined) return undefined;
  if (typeof v !== "string") throw new DaemonError("EINVAL", `"path" must be a string like "xenstore+watch", got ${describe(v)}`);
  if (parsePath(v) === undefined) throw new DaemonError("EINVAL", `"path" must be TRIGGER+NOTIFICATION (e.g. xenstore+watch, evtchn+evtchn), got "${v.slice(0, 64)}"`);
  return v;
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "string") return `the string "${v.slice(0, 32)}"`;
  if (typeof v === "number" || typeof v === "boolean") return `${typeof v} ${String(v)}`;
  return typeof v === "object" ? "an object" : typeof v;
}

/** Parses and validates one request line. Never throws. */
export function parseRequest(line: string): Parsed {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch (err) {
    return { id: null, error: new DaemonError("EPARSE", `malformed JSON: ${err instanceof Error ? err.message : String(err)}`) };
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    return { id: null, error: new DaemonError("EPARSE", `a request is a JSON object {id, op, ...}, got ${describe(raw)}`) };
  }
  const obj = raw as Record<string, unknown>;
  const idv = obj.id;
  let id: RequestId | null = null;
  if (typeof idv === "string" || (typeof idv === "number" && Number.isFinite(idv))) id = idv;
  try {
    if (id === null) throw new DaemonError("EINVAL", `"id" must be a string or a number, got ${idv === undefined ? "nothing" : describe(idv)}`);
    if (typeof obj.op !== "string") throw new DaemonError("EINVAL", `"op" must be a string, got ${obj.op === undefined ? "nothing" : describe(obj.op)}`);
    const op = obj.op;
    if (!isOp(op)) throw new DaemonError("EUNKNOWNOP", `unknown op "${op.slice(0, 64)}" (ops: ${OPS.join(", ")})`);
    const allowed = FIELDS[op];
    for (const k of Object.keys(obj)) {
      if (k !== "id" && k !== "op" && !allowed.includes(k)) throw new DaemonError("EINVAL", `unknown field "${k.slice(0, 64)}" for ${op} (allowed: ${allowed.join(", ") || "none"})`);
    }
    return { id, request: validate(op, obj) };
  } catch (err) {
    return { id, error: err instanceof DaemonError ? err : new DaemonError("EINVAL", String(err)) };
  }
}

function validate(op: Op, obj: Record<string, unknown>): Request {
  switch (op) {
    case "suspend": {
      const path = pathField(obj);
      const timeoutMs = int(obj, "timeoutMs", 1, MAX_TIMEOUT_MS, false);
      return { op, domid: domidField(obj, true) ?? -1, ...(path === undefined ? {} : { path }), ...(timeoutMs === undefined ? {} : { timeoutMs }) };
    }
    case "resume":
      return { op, domid: domidField(obj, true) ?? -1 };
    case "checkpoint.start": {
      const path = pathField(obj);
      const timeoutMs = int(obj, "timeoutMs", 1, MAX_TIMEOUT_MS, false);
      const count = int(obj, "count", 1, MAX_COUNT, false);
      return {
        op,
        domid: domidField(obj, true) ?? -1,
        intervalMs: int(obj, "intervalMs", 0, MAX_INTERVAL_MS, true),
        ...(count === undefined ? {} : { count }),
        ...(path === undefined ? {} : { path }),
        ...(timeoutMs === undefined ? {} : { timeoutMs }),
      };
    }
    case "checkpoint.stop":
      return { op, domid: domidField(obj, true) ?? -1 };
    case "status": {
      const domid = domidField(obj, false);
      return domid === undefined ? { op } : { op, domid };
    }
    case "metrics":
      return { op };
  }
}

export function okResponse(id: RequestId | null, result: unknown): OkResponse {
  return { id, ok: true, result };
}

export function errorResponse(id: RequestId | null, err: DaemonError): ErrorResponse {
  return { id, ok: false, error: { code: err.code, message: err.message } };
}

/** One response line (JSON; NaN and Infinity written as null). */
export function encodeResponse(r: Response): string {
  return `${JSON.stringify(r, (_k, v: unknown) => (typeof v === "number" && !Number.isFinite(v) ? null : v))}\n`;
}

// Parsing and validation of one request line (the daemon's side of protocol.ts): every bad input
// gets a specific error, matched to the request's id when it has one.
import { parsePath } from "@fastsuspend/coordinator";
import { DOMID_MAX } from "@fastsuspend/xen";

import { DaemonError, OPS, PROTOCOL_VERSION, type Op, type Request, type RequestId } from "./protocol";

/** What the request line parser gives back: the id (so even a bad request gets a matched error) and the request or an error. */
export type Parsed = { id: RequestId | null; request: Request; error?: undefined } | { id: RequestId | null; request?: undefined; error: DaemonError };

const MAX_TIMEOUT_MS = 600_000;
const MAX_INTERVAL_MS = 3_600_000;
const MAX_COUNT = 100_000_000;
const MIN_PROGRESS_MS = 10;

const LOOP_FIELDS = ["domid", "intervalMs", "count", "path", "timeoutMs"] as const;

/** Allowed fields per op (besides id, op and v). */
const FIELDS: Record<Op, readonly string[]> = {
  suspend: ["domid", "path", "timeoutMs"],
  resume: ["domid"],
  checkpoint: [...LOOP_FIELDS, "progressMs"],
  "checkpoint.start": LOOP_FIELDS,
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
  const d = required ? int(obj, "domid", 0, DOMID_MAX, true) : int(obj, "domid", 0, DOMID_MAX, false);
  if (d === 0) throw new DaemonError("ECONTROLDOMAIN", "domain 0 is the control domain: it cannot be suspended or checkpointed");
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

/** The fields whose value is not undefined (optional fields absent from the request stay absent). */
function defined<T extends Record<string, unknown>>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
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
      if (k !== "id" && k !== "op" && k !== "v" && !allowed.includes(k)) throw new DaemonError("EINVAL", `unknown field "${k.slice(0, 64)}" for ${op} (allowed: ${allowed.join(", ") || "none"})`);
    }
    const v = int(obj, "v", 1, Number.MAX_SAFE_INTEGER, false);
    if (v !== undefined && v > PROTOCOL_VERSION) throw new DaemonError("EINVAL", `protocol version ${v} is newer than this daemon's (${PROTOCOL_VERSION}): restart fastsuspendd after an upgrade`);
    return { id, request: validate(op, obj) };
  } catch (err) {
    return { id, error: err instanceof DaemonError ? err : new DaemonError("EINVAL", String(err)) };
  }
}

function validate(op: Op, obj: Record<string, unknown>): Request {
  const domid = (): number => domidField(obj, true) ?? -1;
  const loop = (): { domid: number; intervalMs: number; count?: number; path?: string; timeoutMs?: number } => defined({
    domid: domid(),
    intervalMs: int(obj, "intervalMs", 0, MAX_INTERVAL_MS, true),
    count: int(obj, "count", 1, MAX_COUNT, false),
    path: pathField(obj),
    timeoutMs: int(obj, "timeoutMs", 1, MAX_TIMEOUT_MS, false),
  });
  switch (op) {
    case "suspend":
      return { op, ...defined({ domid: domid(), path: pathField(obj), timeoutMs: int(obj, "timeoutMs", 1, MAX_TIMEOUT_MS, false) }) };
    case "resume":
    case "checkpoint.stop":
      return { op, domid: domid() };
    case "checkpoint":
      return { op, ...loop(), ...defined({ progressMs: int(obj, "progressMs", MIN_PROGRESS_MS, MAX_INTERVAL_MS, false) }) };
    case "checkpoint.start":
      return { op, ...loop() };
    case "status":
      return { op, ...defined({ domid: domidField(obj, false) }) };
    case "metrics":
      return { op };
  }
}

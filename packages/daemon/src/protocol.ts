// The daemon's wire protocol, as types: newline-delimited JSON over a unix socket. One request per
// line, `{id, op, ...params}`; per request, zero or more progress frames `{v, id, progress}` (only
// `checkpoint` sends them) and then one answer, `{v, id, ok: true, result}` or
// `{v, id, ok: false, error: {code, message}}`. Requests on one connection may be answered out of
// order (a status while a suspend of another domain is running): match them by id. Parsing and
// validation of request lines: parse-request.ts. The client (client.ts) needs nothing else.
import type { Capabilities, CheckpointCounts, CoordinatorErrorCode, SessionState, SuspendResult, Summary } from "@fastsuspend/coordinator";

import type { JournalEntry } from "./journal";

/**
 * 2: the `checkpoint` op and its progress frames, `v` on every frame. Frames of a daemon before
 * it carry no `v` (version 1).
 */
export const PROTOCOL_VERSION = 2;

/** Longest request line accepted (bytes, without the newline). Over it: ETOOBIG, then the connection is closed. */
export const MAX_LINE_BYTES = 64 * 1024;
export const DEFAULT_SOCKET_PATH = "/run/fastsuspend/daemon.sock";
export const DEFAULT_RUN_DIR = "/run/fastsuspend";
export const SOCKET_ENV = "FASTSUSPEND_SOCKET";
/** How often a `checkpoint` request gets a progress frame when it does not say (`progressMs`). */
export const DEFAULT_PROGRESS_MS = 1000;

export const OPS = ["suspend", "resume", "checkpoint", "checkpoint.start", "checkpoint.stop", "status", "metrics"] as const;
export type Op = (typeof OPS)[number];

export type RequestId = string | number;

/**
 * The coordinator's codes (ENODOMAIN, ECONTROLDOMAIN, EDYING, EDOMAIN, ESUSPENDED, ENOTSUSPENDED,
 * EINPROGRESS, EINTERRUPTED, ELOCKED, ETIMEDOUT, ENOPATH, ESESSION, ECLOSED: the daemon answers
 * with them for the same cases, whether the coordinator or its own checks found them), and the
 * daemon's own.
 */
export type DaemonErrorCode =
  | CoordinatorErrorCode
  /** The line is not JSON, or not a JSON object. */
  | "EPARSE"
  /** A field is missing, has the wrong type or is out of range; or an unknown field. */
  | "EINVAL"
  /** `op` is not one of OPS. */
  | "EUNKNOWNOP"
  /** The request line is longer than MAX_LINE_BYTES (the connection is closed after this). */
  | "ETOOBIG"
  /** The domain is busy: a checkpoint loop runs, or another tool (xl) holds or paused it. */
  | "EBUSY"
  /** checkpoint.stop: no loop runs on the domain. */
  | "ENOLOOP"
  /** The daemon is stopping. */
  | "ESHUTDOWN"
  | "EINTERNAL";

// Requests, one per op.

interface Versioned {
  /** The protocol version the client speaks (optional; a newer one than the daemon's is refused). */
  v?: number;
}
export interface SuspendRequest extends Versioned { op: "suspend"; domid: number; path?: string; timeoutMs?: number }
export interface ResumeRequest extends Versioned { op: "resume"; domid: number }
/** Runs a loop to its end on this request: progress frames every `progressMs`, then the loop's summary. */
export interface CheckpointRequest extends Versioned { op: "checkpoint"; domid: number; intervalMs: number; count?: number; path?: string; timeoutMs?: number; progressMs?: number }
/** Starts a loop and answers at once; `status` or `checkpoint.stop` tell how it went. */
export interface CheckpointStartRequest extends Versioned { op: "checkpoint.start"; domid: number; intervalMs: number; count?: number; path?: string; timeoutMs?: number }
export interface CheckpointStopRequest extends Versioned { op: "checkpoint.stop"; domid: number }
export interface StatusRequest extends Versioned { op: "status"; domid?: number }
export interface MetricsRequest extends Versioned { op: "metrics" }

export type Request = SuspendRequest | ResumeRequest | CheckpointRequest | CheckpointStartRequest | CheckpointStopRequest | StatusRequest | MetricsRequest;
export type RequestOf<O extends Op> = Extract<Request, { op: O }>;
/** A request's fields besides `op` (and `id`, which the client adds). */
export type ParamsOf<O extends Op> = Omit<RequestOf<O>, "op">;

// Results, one per op.

export interface SuspendReply extends SuspendResult { domid: number }
export interface ResumeReply { domid: number; resumeMs: number; xsResumeMs: number }
export interface CheckpointStartReply { domid: number; started: true; path: string | null; intervalMs: number; count: number | null }
/** `checkpoint` (when the loop has ended) and `checkpoint.stop` (after the cycle in flight). */
export interface LoopReply { domid: number; loop: LoopStatus }

/** A loop's counts are its CheckpointRunner's: `skipped` are cycles another tool's hold or suspend turned down. */
export interface LoopStatus extends Pick<CheckpointCounts, "done" | "ok" | "failed" | "skipped"> {
  running: boolean;
  intervalMs: number;
  count: number | null;
  path: string | null;
  startedAt: string;
  lastError: string | null;
  lastSkip: string | null;
  stoppedBy: "count" | "request" | "error" | "domain-gone" | "shutdown" | null;
  /** This loop's own cycles (the last 100 of them), unlike `rolling` in status. */
  cycleMs: Summary;
  suspendMs: Summary;
}

/** A `checkpoint` request's progress frame: the loop's counts now (cumulative: a dropped frame loses nothing). */
export type CheckpointProgress = Omit<LoopStatus, "cycleMs" | "suspendMs"> & { domid: number };

export interface LastOp {
  op: "suspend" | "resume" | "cycle";
  at: string;
  path: string | null;
  timings: Record<string, number | string>;
}

export interface SessionView { state: SessionState; path: string | null }

/** `status` without a domid: the daemon and every guest domain. */
export interface DaemonStatus {
  daemon: { pid: number; uptimeS: number; clients: number; journal: JournalEntry[]; stopping: boolean };
  domains: { domid: number; state: string; session: SessionView | null; loop: LoopStatus | null; last: LastOp | null }[];
}

/** `status DOMID`: what `fastsuspend info` shows, and what the daemon holds and did for the domain. */
export interface DomainStatus {
  domid: number;
  /** running, paused, suspended, dying, "shutdown (REASON)", or gone. */
  state: string;
  capabilities: Capabilities;
  chosen: string;
  pathsInUse: string[];
  session: (SessionView & { lockHeldNow: boolean }) | null;
  last: LastOp | null;
  rolling: { suspendMs: Summary; cycleMs: Summary };
  loop: LoopStatus | null;
  queued: number;
  journalled: boolean;
}

export interface ResultMap {
  suspend: SuspendReply;
  resume: ResumeReply;
  checkpoint: LoopReply;
  "checkpoint.start": CheckpointStartReply;
  "checkpoint.stop": LoopReply;
  status: DaemonStatus | DomainStatus;
  /** The Prometheus text exposition. */
  metrics: string;
}
export type ResultOf<O extends Op> = ResultMap[O];
export type Result = ResultMap[Op];

// Frames the daemon writes.

export interface OkResponse { v: number; id: RequestId | null; ok: true; result: Result }
export interface ErrorResponse { v: number; id: RequestId | null; ok: false; error: { code: DaemonErrorCode; message: string } }
export interface ProgressFrame { v: number; id: RequestId; progress: CheckpointProgress }
export type Response = OkResponse | ErrorResponse;
export type Frame = Response | ProgressFrame;

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

export function okResponse(id: RequestId | null, result: Result): OkResponse {
  return { v: PROTOCOL_VERSION, id, ok: true, result };
}

export function errorResponse(id: RequestId | null, err: DaemonError): ErrorResponse {
  return { v: PROTOCOL_VERSION, id, ok: false, error: { code: err.code, message: err.message } };
}

export function progressFrame(id: RequestId, progress: CheckpointProgress): ProgressFrame {
  return { v: PROTOCOL_VERSION, id, progress };
}

/** One frame as a line (JSON; NaN and Infinity written as null). */
export function encodeFrame(f: Frame): string {
  return `${JSON.stringify(f, (_k, v: unknown) => (typeof v === "number" && !Number.isFinite(v) ? null : v))}\n`;
}

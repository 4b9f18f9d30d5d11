// A client of fastsuspendd (`@fastsuspend/daemon/client`): one connection, requests matched by id,
// results typed per op, errors thrown as DaemonError. Loads protocol.ts and nothing of the daemon.
import { createConnection, type Socket } from "node:net";

import {
  DaemonError,
  DEFAULT_PROGRESS_MS,
  DEFAULT_SOCKET_PATH,
  PROTOCOL_VERSION,
  SOCKET_ENV,
  type CheckpointProgress,
  type DaemonStatus,
  type DomainStatus,
  type Frame,
  type LoopReply,
  type Op,
  type ParamsOf,
  type ResultOf,
} from "./protocol";

// The wire types and DaemonError, for the client's users.
export * from "./protocol";

export interface DaemonClientOptions {
  /** Default: $FASTSUSPEND_SOCKET, else /run/fastsuspend/daemon.sock. */
  socketPath?: string;
  /**
   * Per-request timeout (default 30 s). A request that carries its own `timeoutMs` (suspend,
   * checkpoint.start) gets that much more: the daemon may legitimately take it (plus the wait for
   * the domain's queue and the resume), and giving up earlier would report a failure while the
   * guest is still being suspended. A `checkpoint` request has no overall limit: it fails when
   * the daemon is silent for this long plus its progress period.
   */
  timeoutMs?: number;
}

/** How long tryConnect waits for the daemon's answer before working without it. */
const PROBE_MS = 2000;

export function defaultSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  const v = env[SOCKET_ENV];
  return v !== undefined && v !== "" ? v : DEFAULT_SOCKET_PATH;
}

interface Pending {
  op: string;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout | undefined;
  /** Streaming requests: called per progress frame, each of which restarts the timer with `silenceMs`. */
  onProgress?: (p: CheckpointProgress) => void;
  silenceMs?: number;
}

/** The params are optional for the ops that need none (status, metrics). */
type ParamsArg<O extends Op> = object extends ParamsOf<O> ? [params?: ParamsOf<O>, timeoutMs?: number] : [params: ParamsOf<O>, timeoutMs?: number];

export class DaemonClient {
  readonly socketPath: string;
  readonly #sock: Socket;
  readonly #timeoutMs: number;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #buf = "";
  #closedErr: Error | undefined;
  /** The daemon's protocol version, from its last frame (1: a daemon that sends none). */
  protocolVersion: number | undefined;

  private constructor(sock: Socket, socketPath: string, timeoutMs: number) {
    this.#sock = sock;
    this.socketPath = socketPath;
    this.#timeoutMs = timeoutMs;
    sock.setEncoding("utf8");
    sock.on("data", (chunk: string) => {
      this.#buf += chunk;
      for (let nl = this.#buf.indexOf("\n"); nl >= 0; nl = this.#buf.indexOf("\n")) {
        const line = this.#buf.slice(0, nl);
        this.#buf = this.#buf.slice(nl + 1);
        this.#onLine(line);
      }
    });
    sock.on("error", (err) => {
      this.#failAll(err);
    });
    sock.on("close", () => {
      this.#failAll(new DaemonError("ESHUTDOWN", `connection to fastsuspendd (${socketPath}) closed`));
    });
  }

  /** Connects; rejects (ENOENT, ECONNREFUSED, EACCES...) when no daemon answers there. */
  static connect(opts: DaemonClientOptions = {}): Promise<DaemonClient> {
    const path = opts.socketPath ?? defaultSocketPath();
    return new Promise((resolve, reject) => {
      const sock = createConnection(path);
      const onErr = (err: Error): void => {
        reject(err);
      };
      sock.once("error", onErr);
      sock.once("connect", () => {
        sock.off("error", onErr);
        resolve(new DaemonClient(sock, path, opts.timeoutMs ?? 30_000));
      });
    });
  }

  /**
   * The daemon if it runs and answers a metrics request within 2 s, else undefined (no
   * socket, refused, or silent). The CLI uses this to decide between the daemon and working directly.
   */
  static async tryConnect(opts: DaemonClientOptions = {}): Promise<DaemonClient | undefined> {
    let c: DaemonClient;
    try {
      c = await DaemonClient.connect(opts);
    } catch {
      return undefined;
    }
    try {
      await c.request("metrics", {}, PROBE_MS);
      return c;
    } catch {
      c.close();
      return undefined;
    }
  }

  #failAll(err: Error): void {
    this.#closedErr ??= err;
    for (const [id, p] of this.#pending) {
      clearTimeout(p.timer);
      p.reject(this.#closedErr);
      this.#pending.delete(id);
    }
  }

  #onLine(line: string): void {
    let f: Frame;
    try {
      f = JSON.parse(line) as Frame;
    } catch {
      return;
    }
    const v: unknown = (f as { v?: unknown }).v;
    this.protocolVersion = typeof v === "number" ? v : 1;
    if (typeof f.id !== "number") {
      // An error not tied to a request (ETOOBIG): fails everything in flight.
      if ("ok" in f && !f.ok) {
        const err = new DaemonError(f.error.code, f.error.message);
        for (const [id, p] of this.#pending) {
          clearTimeout(p.timer);
          p.reject(err);
          this.#pending.delete(id);
        }
      }
      return;
    }
    const p = this.#pending.get(f.id);
    if (p === undefined) return;
    if ("progress" in f) {
      if (p.silenceMs !== undefined) this.#arm(f.id, p, p.silenceMs);
      p.onProgress?.(f.progress);
      return;
    }
    this.#pending.delete(f.id);
    clearTimeout(p.timer);
    if (f.ok) p.resolve(f.result);
    else p.reject(new DaemonError(f.error.code, f.error.message));
  }

  #arm(id: number, p: Pending, ms: number): void {
    clearTimeout(p.timer);
    p.timer = setTimeout(() => {
      this.#pending.delete(id);
      p.reject(new DaemonError("ETIMEDOUT", `fastsuspendd did not answer ${p.op} within ${ms} ms`));
    }, ms);
  }

  /** How long to wait for the answer to a request with these params (see DaemonClientOptions.timeoutMs). */
  timeoutFor(params: object): number {
    const t = (params as { timeoutMs?: unknown }).timeoutMs;
    return typeof t === "number" && Number.isFinite(t) && t > 0 ? this.#timeoutMs + t : this.#timeoutMs;
  }

  #send(op: Op, params: object, timeoutMs: number, stream?: Pick<Pending, "onProgress" | "silenceMs">): Promise<unknown> {
    if (this.#closedErr !== undefined) return Promise.reject(this.#closedErr);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const p: Pending = { op, resolve, reject, timer: undefined, ...stream };
      this.#arm(id, p, timeoutMs);
      this.#pending.set(id, p);
      this.#sock.write(`${JSON.stringify({ ...params, id, op, v: PROTOCOL_VERSION })}\n`);
    });
  }

  /** `status` of one domain, or of the daemon and every domain. */
  request(op: "status", params: { domid: number }, timeoutMs?: number): Promise<DomainStatus>;
  request(op: "status", params?: { domid?: undefined }, timeoutMs?: number): Promise<DaemonStatus>;
  /** Sends {id, op, v, ...params}; resolves with the op's result or rejects with DaemonError(code, message). */
  request<O extends Op>(op: O, ...args: ParamsArg<O>): Promise<ResultOf<O>>;
  request(op: Op, params: object = {}, timeoutMs = this.timeoutFor(params)): Promise<unknown> {
    return this.#send(op, params, timeoutMs);
  }

  /**
   * Runs a checkpoint loop on the daemon and resolves when it ends (its count reached, stopped by
   * `checkpoint.stop`, too many failures, the domain gone), calling `onProgress` with the loop's
   * counts on each progress frame: the first once the loop is set up (its path known), then every
   * `progressMs`. The loop is the daemon's: closing this connection does not stop it.
   */
  checkpoint(params: ParamsOf<"checkpoint">, onProgress?: (p: CheckpointProgress) => void): Promise<LoopReply> {
    const silenceMs = this.#timeoutMs + (params.progressMs ?? DEFAULT_PROGRESS_MS);
    return this.#send("checkpoint", params, this.timeoutFor(params), { silenceMs, ...(onProgress === undefined ? {} : { onProgress }) }) as Promise<LoopReply>;
  }

  /** Sends a raw line (tests of malformed input). */
  writeRaw(text: string): void {
    this.#sock.write(text);
  }

  close(): void {
    this.#sock.end();
    this.#sock.destroy();
  }
}

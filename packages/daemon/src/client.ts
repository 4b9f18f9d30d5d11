// A client of fastsuspendd: one connection, requests matched by id, errors thrown as DaemonError.
import { createConnection, type Socket } from "node:net";

import {
  DaemonError,
  DEFAULT_SOCKET_PATH,
  SOCKET_ENV,
  type Response,
} from "./protocol";

export interface DaemonClientOptions {
  /** Default: $FASTSUSPEND_SOCKET, else /run/fastsuspend/daemon.sock. */
  socketPath?: string;
  /**
   * Per-request timeout (default 30 s). A request that carries its own `timeoutMs` (suspend,
   * checkpoint.start) gets that much more: the daemon may legitimately take it (plus the wait for
   * the domain's queue and the resume), and giving up earlier would report a failure while the
   * guest is still being suspended.
   */
  timeoutMs?: number;
}

export function defaultSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  const v = env[SOCKET_ENV];
  return v !== undefined && v !== "" ? v : DEFAULT_SOCKET_PATH;
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class DaemonClient {
  readonly socketPath: string;
  readonly #sock: Socket;
  readonly #timeoutMs: number;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #buf = "";
  #closedErr: Error | undefined;

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
    const fail = (err: Error): void => {
      this.#closedErr ??= err;
      for (const [id, p] of this.#pending) {
        clearTimeout(p.timer);
        p.reject(this.#closedErr);
        this.#pending.delete(id);
      }
    };
    sock.on("error", fail);
    sock.on("close", () => {
      fail(new DaemonError("ESHUTDOWN", `connection to fastsuspendd (${socketPath}) closed`));
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
   * The daemon if it runs and answers a status request within `probeMs`, else undefined (no socket,
   * refused, or silent). The CLI uses this to decide between the daemon and working directly.
   */
  static async tryConnect(opts: DaemonClientOptions & { probeMs?: number } = {}): Promise<DaemonClient | undefined> {
    let c: DaemonClient;
    try {
      c = await DaemonClient.connect(opts);
    } catch {
      return undefined;
    }
    try {
      await c.request("metrics", {}, opts.probeMs ?? 2000);
      return c;
    } catch {
      c.close();
      return undefined;
    }
  }

  #onLine(line: string): void {
    let r: Response;
    try {
      r = JSON.parse(line) as Response;
    } catch {
      return;
    }
    if (typeof r.id !== "number") {
      // An error not tied to a request (ETOOBIG): fails everything in flight.
      if (!r.ok) {
        const err = new DaemonError(r.error.code, r.error.message);
        for (const [id, p] of this.#pending) {
          clearTimeout(p.timer);
          p.reject(err);
          this.#pending.delete(id);
        }
      }
      return;
    }
    const p = this.#pending.get(r.id);
    if (p === undefined) return;
    this.#pending.delete(r.id);
    clearTimeout(p.timer);
    if (r.ok) p.resolve(r.result);
    else p.reject(new DaemonError(r.error.code, r.error.message));
  }

  /** How long to wait for the answer to a request with these params (see DaemonClientOptions.timeoutMs). */
  timeoutFor(params: Record<string, unknown>): number {
    const t = params.timeoutMs;
    return typeof t === "number" && Number.isFinite(t) && t > 0 ? this.#timeoutMs + t : this.#timeoutMs;
  }

  /** Sends {id, op, ...params}; resolves with `result` or rejects with DaemonError(code, message). */
  request<T = unknown>(op: string, params: Record<string, unknown> = {}, timeoutMs = this.timeoutFor(params)): Promise<T> {
    if (this.#closedErr !== undefined) return Promise.reject(this.#closedErr);
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new DaemonError("ETIMEDOUT", `fastsuspendd did not answer ${op} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.#sock.write(`${JSON.stringify({ ...params, id, op })}\n`);
    });
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

// The unix-socket front end: newline-delimited JSON, many clients, requests on one connection
// answered as they complete. A line over MAX_LINE_BYTES gets ETOOBIG and the connection is closed
// (its framing can no longer be trusted); any other bad line gets its error and the connection
// stays usable. Nothing a client sends can stop the daemon. A connection is read only while it
// has fewer than 32 requests in the daemon and no backlog of unread answers (backpressure both
// ways: the rest waits in the client's socket).
import { chmodSync, mkdirSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { dirname } from "node:path";

import type { Daemon } from "./daemon";
import { toDaemonError } from "./to-daemon-error";
import { parseRequest } from "./parse-request";
import { DaemonError, encodeFrame, errorResponse, MAX_LINE_BYTES, okResponse, progressFrame, type CheckpointProgress, type RequestId, type Response } from "./protocol";

/**
 * Requests of one connection in the daemon at once: beyond it the connection is not read until one
 * is answered.
 */
export const MAX_IN_FLIGHT_PER_CONNECTION = 32;
/** The socket file's mode: root only. */
const SOCKET_MODE = 0o600;

export interface ServerOptions {
  socketPath: string;
  maxLineBytes?: number;
  log?: (line: string) => void;
}

export class DaemonServer {
  readonly socketPath: string;
  readonly #daemon: Daemon;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #maxLine: number;
  readonly #log: (line: string) => void;
  /** Requests answered (load measurements). */
  answered = 0;
  /** Progress frames written (tests). */
  progressFrames = 0;
  /** Times a connection was paused: its in-flight limit reached, or its answers not read (tests). */
  heldConnections = 0;

  constructor(daemon: Daemon, opts: ServerOptions) {
    this.socketPath = opts.socketPath;
    this.#daemon = daemon;
    this.#maxLine = opts.maxLineBytes ?? MAX_LINE_BYTES;
    this.#log = opts.log ?? (() => undefined);
    this.#server = createServer((sock) => {
      this.#accept(sock);
    });
    daemon.clients = () => this.#sockets.size;
  }

  /** Listens (a stale socket file is replaced: the pid lock already proved no daemon owns it). */
  async listen(): Promise<void> {
    mkdirSync(dirname(this.socketPath), { recursive: true, mode: 0o700 });
    rmSync(this.socketPath, { force: true });
    await new Promise<void>((resolve, reject) => {
      const onErr = (err: Error): void => {
        reject(err);
      };
      this.#server.once("error", onErr);
      this.#server.listen(this.socketPath, () => {
        this.#server.off("error", onErr);
        resolve();
      });
    });
    chmodSync(this.socketPath, SOCKET_MODE);
    this.#server.on("error", (err) => {
      this.#log(`server: ${err.message}`);
    });
  }

  #accept(sock: Socket): void {
    this.#sockets.add(sock);
    let buf: Buffer = Buffer.alloc(0);
    let closed = false;
    let inFlight = 0;
    let paused = false;
    const send = (r: Response): void => {
      if (closed || sock.destroyed) return;
      this.answered++;
      sock.write(encodeFrame(r));
    };
    // Progress frames carry cumulative counts: one that would add to a backlog of unread frames is
    // dropped, so a client that never reads costs the daemon nothing per cycle.
    const sendProgress = (id: RequestId, p: CheckpointProgress): void => {
      if (closed || sock.destroyed || sock.writableNeedDrain) return;
      this.progressFrames++;
      sock.write(encodeFrame(progressFrame(id, p)));
    };
    // Reads requests only while this connection has fewer than MAX_IN_FLIGHT_PER_CONNECTION in the
    // daemon and its answers are being read (no write backlog): otherwise the socket is paused, so
    // that a client pipelining without limit, or never reading, holds a bounded amount of the
    // daemon's memory (the rest waits in its socket buffers).
    const pump = (): void => {
      while (!closed && inFlight < MAX_IN_FLIGHT_PER_CONNECTION && !sock.writableNeedDrain) {
        const nl = buf.indexOf(0x0a);
        if (nl < 0) break;
        const line = buf.subarray(0, nl);
        buf = buf.subarray(nl + 1);
        if (line.length > this.#maxLine) {
          this.#tooBig(sock, send, line.length);
          closed = true;
          return;
        }
        const text = line.toString("utf8").trim();
        if (text === "") continue;
        const pending = this.#handleLine(text, send, sendProgress);
        if (pending !== undefined) {
          inFlight++;
          void pending.then(() => {
            inFlight--;
            pump();
          });
        }
      }
      if (closed) return;
      if (buf.length > this.#maxLine && buf.indexOf(0x0a) < 0) {
        this.#tooBig(sock, send, buf.length);
        closed = true;
        return;
      }
      const hold = inFlight >= MAX_IN_FLIGHT_PER_CONNECTION || sock.writableNeedDrain;
      if (hold && !paused) {
        paused = true;
        this.heldConnections++;
        sock.pause();
      } else if (!hold && paused) {
        paused = false;
        sock.resume();
      }
    };
    sock.on("data", (chunk: Buffer) => {
      if (closed) return;
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      pump();
    });
    sock.on("drain", pump);
    sock.on("error", () => undefined);
    sock.on("close", () => {
      closed = true;
      this.#sockets.delete(sock);
    });
  }

  #tooBig(sock: Socket, send: (r: Response) => void, n: number): void {
    send(errorResponse(null, new DaemonError("ETOOBIG", `request line over ${this.#maxLine} bytes (${n}${n > this.#maxLine ? "+" : ""} read without a newline): closing the connection`)));
    this.#daemon.metrics.requestErrors.inc({ op: "none", code: "ETOOBIG" });
    sock.end();
    setTimeout(() => sock.destroy(), 1000).unref();
  }

  /** Answers a bad line at once (undefined), or hands the request to the daemon (settles when answered). */
  #handleLine(text: string, send: (r: Response) => void, sendProgress: (id: RequestId, p: CheckpointProgress) => void): Promise<void> | undefined {
    const p = parseRequest(text);
    if (p.error !== undefined) {
      this.#daemon.metrics.requestErrors.inc({ op: "none", code: p.error.code });
      send(errorResponse(p.id, p.error));
      return undefined;
    }
    const id = p.id;
    const progress = id === null ? undefined : (f: CheckpointProgress): void => {
      sendProgress(id, f);
    };
    return this.#daemon.handle(p.request, progress === undefined ? {} : { progress }).then(
      (result) => {
        send(okResponse(p.id, result));
      },
      (err: unknown) => {
        send(errorResponse(p.id, toDaemonError(err)));
      },
    );
  }

  /** Stops accepting, closes every connection and removes the socket file. */
  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => {
      this.#server.close(() => {
        resolve();
      });
    });
    rmSync(this.socketPath, { force: true });
  }
}

// The unix-socket front end: newline-delimited JSON, many clients, requests on one connection
// answered as they complete. A line over MAX_LINE_BYTES gets ETOOBIG and the connection is closed
// (its framing can no longer be trusted); any other bad line gets its error and the connection
// stays usable. Nothing a client sends can stop the daemon.
import { chmodSync, mkdirSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { dirname } from "node:path";

import type { Daemon } from "./daemon";
import { toDaemonError } from "./daemon";
import { DaemonError, encodeResponse, errorResponse, MAX_LINE_BYTES, okResponse, parseRequest, type Response } from "./protocol";

export interface ServerOptions {
  socketPath: string;
  maxLineBytes?: number;
  /** Socket file mode (default 0600: root only). */
  mode?: number;
  log?: (line: string) => void;
}

export class DaemonServer {
  readonly socketPath: string;
  readonly #daemon: Daemon;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #maxLine: number;
  readonly #mode: number;
  readonly #log: (line: string) => void;
  /** Requests answered (load measurements). */
  answered = 0;

  constructor(daemon: Daemon, opts: ServerOptions) {
    this.socketPath = opts.socketPath;
    this.#daemon = daemon;
    this.#maxLine = opts.maxLineBytes ?? MAX_LINE_BYTES;
    this.#mode = opts.mode ?? 0o600;
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
    chmodSync(this.socketPath, this.#mode);
    this.#server.on("error", (err) => {
      this.#log(`server: ${err.message}`);
    });
  }

  #accept(sock: Socket): void {
    this.#sockets.add(sock);
    let buf: Buffer = Buffer.alloc(0);
    let closed = false;
    const send = (r: Response): void => {
      if (closed || sock.destroyed) return;
      this.answered++;
      sock.write(encodeResponse(r));
    };
    sock.on("data", (chunk: Buffer) => {
      if (closed) return;
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      for (;;) {
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
        if (text !== "") this.#handleLine(text, send);
      }
      if (buf.length > this.#maxLine) {
        this.#tooBig(sock, send, buf.length);
        closed = true;
      }
    });
    sock.on("error", () => undefined);
    sock.on("close", () => {
      closed = true;
      this.#sockets.delete(sock);
    });
  }

  #tooBig(sock: Socket, send: (r: Response) => void, n: number): void {
    send(errorResponse(null, new DaemonError("ETOOBIG", `request line over ${this.#maxLine} bytes (${n}${n > this.#maxLine ? "+" : ""} read without a newline): closing the connection`)));
    this.#daemon.requestErrors.inc({ op: "none", code: "ETOOBIG" });
    sock.end();
    setTimeout(() => sock.destroy(), 1000).unref();
  }

  #handleLine(text: string, send: (r: Response) => void): void {
    const p = parseRequest(text);
    if (p.error !== undefined) {
      this.#daemon.requestErrors.inc({ op: "none", code: p.error.code });
      send(errorResponse(p.id, p.error));
      return;
    }
    this.#daemon.handle(p.request).then(
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

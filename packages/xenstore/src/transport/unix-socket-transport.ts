import * as net from "node:net";
import type { Transport, TransportEvents, TransportFactory } from "./transport";

/** xenstored's socket (oxenstored and cxenstored both listen here, as root). */
export class UnixSocketTransport implements Transport {
  readonly description: string;
  private closed = false;

  private constructor(
    private readonly socket: net.Socket,
    path: string,
    events: TransportEvents,
  ) {
    this.description = `unix:${path}`;
    socket.on("data", (chunk: Buffer) => {
      events.onData(chunk);
    });
    let closeError: Error | undefined;
    socket.on("error", (err) => {
      closeError = err;
    });
    socket.on("close", () => {
      this.closed = true;
      events.onClose(closeError);
    });
  }

  static connect(path: string, events: TransportEvents): Promise<UnixSocketTransport> {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection({ path });
      const onError = (err: Error): void => {
        socket.destroy();
        reject(err);
      };
      socket.once("error", onError);
      socket.once("connect", () => {
        socket.off("error", onError);
        resolve(new UnixSocketTransport(socket, path, events));
      });
    });
  }

  send(frame: Buffer): Promise<void> {
    if (this.closed) return Promise.reject(new Error(`${this.description}: closed`));
    return new Promise((resolve, reject) => {
      this.socket.write(frame, (err) => {
        if (err) reject(err);
        else resolve();
      });
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

export function unixSocketTransport(path: string): TransportFactory {
  return (events) => UnixSocketTransport.connect(path, events);
}

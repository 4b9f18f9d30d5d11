import {
  XenstoreClosedError,
  XenstoreError,
  XenstoreProtocolError,
  XenstoreTimeoutError,
} from "../errors";
import { encodeFrame, FrameDecoder, type Frame } from "../protocol/frame";
import { firstString } from "../protocol/payload";
import { XsType, xsTypeName } from "../protocol/wire-types";
import type { Transport, TransportFactory } from "../transport/transport";

/** What a request is, for error messages: "read /local/domain/7/x". */
export interface RequestLabel {
  op: string;
  subject?: string;
}

interface Pending {
  type: number;
  label: RequestLabel;
  resolve: (payload: Buffer) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout | undefined;
}

export interface ConnectionHandlers {
  onWatchEvent(path: string, token: string): void;
  onClose(error?: Error): void;
}

/**
 * One transport's lifetime: multiplexes requests over it, matching replies by
 * req_id (the spec allows out-of-order replies, and the kernel device does
 * reorder), and hands watch events (type WATCH_EVENT; their req_id is not
 * meaningful) to the client. When the transport closes, every outstanding
 * request is rejected; a Connection is never reused after that.
 */
export class Connection {
  private transport: Transport | undefined;
  private readonly decoder = new FrameDecoder();
  private readonly pending = new Map<number, Pending>();
  private nextReqId = 1;
  private isClosed = false;

  private constructor(private readonly handlers: ConnectionHandlers) {}

  static async open(factory: TransportFactory, handlers: ConnectionHandlers): Promise<Connection> {
    const connection = new Connection(handlers);
    connection.transport = await factory({
      onData: (chunk) => {
        connection.onData(chunk);
      },
      onClose: (error) => {
        connection.onTransportClosed(error);
      },
    });
    // The transport may have died between opening and returning.
    if (connection.isClosed) throw new XenstoreClosedError("xenstore: connection closed while opening");
    return connection;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  get description(): string {
    return this.transport?.description ?? "(opening)";
  }

  /** Number of requests awaiting a reply (for tests and diagnostics). */
  get outstanding(): number {
    return this.pending.size;
  }

  /**
   * Sends one request and resolves with the reply payload. XS_ERROR becomes a
   * XenstoreError; no reply within `timeoutMs` becomes a XenstoreTimeoutError
   * (a late reply is then dropped). `timeoutMs` 0 or Infinity waits forever.
   */
  request(type: number, txId: number, payload: Buffer, label: RequestLabel, timeoutMs: number): Promise<Buffer> {
    const transport = this.transport;
    if (this.isClosed || transport === undefined) {
      return Promise.reject(new XenstoreClosedError(`xenstore ${label.op}: connection closed`));
    }
    const reqId = this.allocateReqId();
    return new Promise<Buffer>((resolve, reject) => {
      const entry: Pending = { type, label, resolve, reject, timer: undefined };
      if (timeoutMs > 0 && Number.isFinite(timeoutMs)) {
        entry.timer = setTimeout(() => {
          this.pending.delete(reqId);
          reject(new XenstoreTimeoutError(label.op, label.subject, timeoutMs));
        }, timeoutMs);
      }
      this.pending.set(reqId, entry);
      transport.send(encodeFrame({ type, reqId, txId, payload })).catch((err: unknown) => {
        if (this.pending.get(reqId) !== entry) return;
        this.settle(reqId);
        // The xenbus device refuses a message it will not relay (e.g. too large) on write(2), with
        // an errno: that is xenstore's answer to this request, not a dead connection.
        const code = (err as NodeJS.ErrnoException | undefined)?.code;
        if (transport.description.startsWith("device:") && code !== undefined && /^E[A-Z0-9]+$/.test(code) && code !== "EBADF") {
          reject(new XenstoreError(code, label.op, label.subject));
        } else {
          reject(new XenstoreClosedError(`xenstore ${label.op}: send failed`, { cause: err }));
        }
      });
    });
  }

  close(): void {
    this.transport?.close();
    // Unix sockets report close asynchronously; fail requests now, not later.
    this.onTransportClosed();
  }

  private allocateReqId(): number {
    // req_id is a u32 echoed back; 0 is avoided so it never looks like a watch event's.
    for (;;) {
      const id = this.nextReqId;
      this.nextReqId = id >= 0xffffffff ? 1 : id + 1;
      if (!this.pending.has(id)) return id;
    }
  }

  private settle(reqId: number): Pending | undefined {
    const entry = this.pending.get(reqId);
    if (entry === undefined) return undefined;
    this.pending.delete(reqId);
    if (entry.timer !== undefined) clearTimeout(entry.timer);
    return entry;
  }

  private onData(chunk: Buffer): void {
    if (this.isClosed) return;
    let frames: Frame[];
    try {
      frames = this.decoder.push(chunk);
    } catch (err) {
      // Framing lost: nothing after this point can be matched up reliably.
      this.fail(new XenstoreProtocolError("xenstore: unreadable reply stream", { cause: err }));
      return;
    }
    for (const frame of frames) this.dispatch(frame);
  }

  private dispatch(frame: Frame): void {
    if (frame.type === XsType.WATCH_EVENT) {
      const end = frame.payload.indexOf(0);
      if (end === -1) return; // malformed event: nothing to route it by
      const path = frame.payload.toString("utf8", 0, end);
      const token = firstString(frame.payload.subarray(end + 1));
      this.handlers.onWatchEvent(path, token);
      return;
    }
    const entry = this.settle(frame.reqId);
    if (entry === undefined) return; // late reply to a timed-out request
    if (frame.type === XsType.ERROR) {
      entry.reject(new XenstoreError(firstString(frame.payload), entry.label.op, entry.label.subject));
    } else if (frame.type !== entry.type) {
      entry.reject(
        new XenstoreProtocolError(
          `xenstore ${entry.label.op}: reply of type ${xsTypeName(frame.type)} to a ${xsTypeName(entry.type)} request`,
        ),
      );
    } else {
      entry.resolve(frame.payload);
    }
  }

  private fail(error: Error): void {
    this.transport?.close();
    this.onTransportClosed(error);
  }

  private onTransportClosed(error?: Error): void {
    if (this.isClosed) return;
    this.isClosed = true;
    for (const reqId of [...this.pending.keys()]) {
      const entry = this.settle(reqId);
      entry?.reject(
        new XenstoreClosedError(
          `xenstore ${entry.label.op}${entry.label.subject === undefined ? "" : ` ${entry.label.subject}`}: connection closed before the reply`,
          error === undefined ? undefined : { cause: error },
        ),
      );
    }
    this.handlers.onClose(error);
  }
}

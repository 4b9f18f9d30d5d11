import * as fs from "node:fs";
import { encodeFrame, FrameDecoder } from "../protocol/frame";
import { nulTerminated } from "../protocol/payload";
import { XsType } from "../protocol/wire-types";
import type { Transport, TransportEvents, TransportFactory } from "./transport";

/**
 * /dev/xen/xenbus: the kernel's xenbus device. It speaks the same framing as
 * the socket (the kernel relays to xenstored over the ring), which is how a
 * dom0 without a xenstored socket (xenstored in a stubdom) or a domU reaches xenstore.
 *
 * A character device cannot be put in non-blocking mode usefully from Node,
 * so reads go through fs.read: each outstanding read occupies one libuv
 * threadpool thread until the kernel has data. That cost is kept inside this
 * class. Only one read is ever outstanding.
 *
 * Closing is the delicate part: close(2) does not wake a read blocked in
 * another thread, and closing the fd under it would let the number be reused
 * by an unrelated open() that the pending read would then consume. So close()
 * only marks the transport closed and sends a harmless request
 * (GET_DOMAIN_PATH 0); its reply wakes the read, and the read loop closes the fd.
 *
 * One request in flight, as libxenstore does on this device: Linux (6.1) queues
 * a request with its payload still pointing into the file's write buffer, and
 * copies it to the ring only when the ring has room. The next write(2)
 * overwrites that buffer, so a pipelined request can reach xenstored with a
 * later request's payload: in the lab, oxenstored (which drains the ring more
 * slowly) acknowledged 48 pipelined writes and applied 17-46 of them, some to
 * the wrong node. So each request is written only after the previous one's
 * reply has been read; watch events, which are not replies, do not count.
 */
export class XenbusDeviceTransport implements Transport {
  readonly description: string;
  private closing = false;
  private closeReported = false;
  private readonly buffer = Buffer.alloc(64 * 1024);

  private constructor(
    private readonly fd: number,
    path: string,
    private readonly events: TransportEvents,
  ) {
    this.description = `device:${path}`;
    this.readLoop();
  }

  static open(path: string, events: TransportEvents): Promise<XenbusDeviceTransport> {
    return new Promise((resolve, reject) => {
      fs.open(path, "r+", (err, fd) => {
        if (err) reject(err);
        else resolve(new XenbusDeviceTransport(fd, path, events));
      });
    });
  }

  private readLoop(): void {
    fs.read(this.fd, this.buffer, 0, this.buffer.length, null, (err, bytesRead) => {
      if (this.closing) {
        this.release();
        return;
      }
      if (err) {
        this.release(err);
        return;
      }
      if (bytesRead === 0) {
        this.release(new Error(`${this.description}: end of file`));
        return;
      }
      const data = Buffer.from(this.buffer.subarray(0, bytesRead));
      this.countReplies(data);
      this.events.onData(data);
      this.readLoop();
    });
  }

  private release(error?: Error): void {
    this.closing = true;
    fs.close(this.fd, () => undefined);
    this.reportClose(error);
  }

  private reportClose(error?: Error): void {
    if (this.closeReported) return;
    this.closeReported = true;
    this.events.onClose(error);
  }

  // The reply stream, reassembled only to count replies, and the sender waiting for the next one.
  private readonly replies = new FrameDecoder();
  private replyWaiters: (() => void)[] = [];

  /** Releases one waiting sender per complete reply frame (watch events are not replies). */
  private countReplies(data: Buffer): void {
    let frames;
    try {
      frames = this.replies.push(data);
    } catch {
      return; // an oversize frame: the client's own decoder reports it and closes the connection
    }
    for (const f of frames) if (f.type !== XsType.WATCH_EVENT) this.replyWaiters.shift()?.();
  }

  // One request at a time, each written whole and only once the previous one has its reply (see
  // the class comment). Concurrent writes from the threadpool would also interleave frames.
  private writes: Promise<void> = Promise.resolve();

  send(frame: Buffer): Promise<void> {
    if (this.closing) return Promise.reject(new Error(`${this.description}: closed`));
    let replied: () => void = () => undefined;
    const reply = new Promise<void>((resolve) => { replied = resolve; });
    const next = this.writes.then(() => {
      if (this.closing) throw new Error(`${this.description}: closed`);
      this.replyWaiters.push(replied);
      return this.writeWhole(frame).catch((err: unknown) => {
        // Refused by the device: no reply will come for it.
        this.replyWaiters.splice(this.replyWaiters.indexOf(replied), 1);
        replied();
        throw err;
      });
    });
    this.writes = next.then(() => reply, () => undefined);
    return next;
  }

  // The kernel device assembles a message from one or more writes, but a short
  // write must still be continued from where it stopped.
  private writeWhole(frame: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      const step = (offset: number): void => {
        fs.write(this.fd, frame, offset, frame.length - offset, null, (err, written) => {
          if (err) reject(err);
          else if (offset + written < frame.length) step(offset + written);
          else resolve();
        });
      };
      step(0);
    });
  }

  close(): void {
    if (this.closing) return;
    // Send the wake-up request first: once `closing` is set, send() refuses.
    const wake = encodeFrame({ type: XsType.GET_DOMAIN_PATH, reqId: 0, txId: 0, payload: nulTerminated("0") });
    this.writeWhole(wake).catch(() => undefined);
    this.closing = true;
    // Senders queued behind a reply that will not come now fail (send() checks `closing`).
    for (const w of this.replyWaiters.splice(0)) w();
    // Pending requests are failed now; the fd itself is released when the read returns.
    this.reportClose();
  }
}

export function xenbusDeviceTransport(path = "/dev/xen/xenbus"): TransportFactory {
  return (events) => XenbusDeviceTransport.open(path, events);
}

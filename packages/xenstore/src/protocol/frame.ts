import { HEADER_SIZE, PAYLOAD_MAX } from "./limits";

/** One xenstore message: a decoded struct xsd_sockmsg and its payload. */
export interface Frame {
  type: number;
  reqId: number;
  txId: number;
  payload: Buffer;
}

/** Serialises a frame. The caller has already checked the payload size. */
export function encodeFrame(frame: Frame): Buffer {
  const out = Buffer.allocUnsafe(HEADER_SIZE + frame.payload.length);
  out.writeUInt32LE(frame.type >>> 0, 0);
  out.writeUInt32LE(frame.reqId >>> 0, 4);
  out.writeUInt32LE(frame.txId >>> 0, 8);
  out.writeUInt32LE(frame.payload.length, 12);
  frame.payload.copy(out, HEADER_SIZE);
  return out;
}

/** The peer announced a payload larger than the protocol allows: the stream can't be trusted. */
export class FrameTooLargeError extends Error {
  constructor(readonly length: number) {
    super(`xenstore: incoming message announces ${length} bytes, over the ${PAYLOAD_MAX}-byte limit`);
    this.name = "FrameTooLargeError";
  }
}

/**
 * Reassembles frames from a byte stream. Sockets (and the xenbus device)
 * deliver arbitrary chunks: a header may be split across reads, and several
 * messages may arrive in one read, so nothing here assumes chunk boundaries.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;

  /** Feeds bytes; returns every frame they complete, in order. Throws FrameTooLargeError. */
  push(chunk: Buffer): Frame[] {
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    const frames: Frame[] = [];
    for (;;) {
      if (this.buffered < HEADER_SIZE) return frames;
      const header = this.peek(HEADER_SIZE);
      const len = header.readUInt32LE(12);
      if (len > PAYLOAD_MAX) throw new FrameTooLargeError(len);
      if (this.buffered < HEADER_SIZE + len) return frames;
      const whole = this.take(HEADER_SIZE + len);
      frames.push({
        type: whole.readUInt32LE(0),
        reqId: whole.readUInt32LE(4),
        txId: whole.readUInt32LE(8),
        // A copy, so a frame kept by a consumer never pins a large socket chunk.
        payload: Buffer.from(whole.subarray(HEADER_SIZE)),
      });
    }
  }

  /** Bytes received but not yet part of a complete frame. */
  get pendingBytes(): number {
    return this.buffered;
  }

  private peek(n: number): Buffer {
    const first = this.chunks[0];
    if (first !== undefined && first.length >= n) return first.subarray(0, n);
    const joined = Buffer.concat(this.chunks);
    this.chunks = [joined];
    return joined.subarray(0, n);
  }

  private take(n: number): Buffer {
    const joined = this.peek(n);
    const first = this.chunks[0];
    if (first === undefined) throw new Error("FrameDecoder: internal underflow");
    if (first.length === n) this.chunks.shift();
    else this.chunks[0] = first.subarray(n);
    this.buffered -= n;
    return joined;
  }
}

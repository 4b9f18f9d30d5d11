import { encodeFrame, FrameDecoder, FrameTooLargeError, type Frame } from "./frame";
import { HEADER_SIZE, PAYLOAD_MAX } from "./limits";
import { firstString, nulTerminated, splitNulList } from "./payload";
import { XsType, xsTypeName } from "./wire-types";

const frame = (reqId: number, text: string): Frame => ({
  type: XsType.READ,
  reqId,
  txId: 7,
  payload: Buffer.from(text),
});

describe("frame encoding", () => {
  it("writes the four header words little-endian", () => {
    const bytes = encodeFrame({ type: 2, reqId: 0x01020304, txId: 0xffffffff, payload: Buffer.from("ab") });
    expect(bytes.length).toBe(HEADER_SIZE + 2);
    expect([...bytes.subarray(0, 16)]).toEqual([2, 0, 0, 0, 4, 3, 2, 1, 255, 255, 255, 255, 2, 0, 0, 0]);
    expect(bytes.subarray(16).toString()).toBe("ab");
  });
});

describe("FrameDecoder", () => {
  it("reassembles a frame delivered one byte at a time", () => {
    const decoder = new FrameDecoder();
    const bytes = encodeFrame(frame(5, "hello\0"));
    const out: Frame[] = [];
    for (const byte of bytes) out.push(...decoder.push(Buffer.from([byte])));
    expect(out).toEqual([frame(5, "hello\0")]);
    expect(decoder.pendingBytes).toBe(0);
  });

  it("splits coalesced frames, including one that ends mid-header", () => {
    const decoder = new FrameDecoder();
    const all = Buffer.concat([encodeFrame(frame(1, "a")), encodeFrame(frame(2, "")), encodeFrame(frame(3, "ccc"))]);
    const cut = HEADER_SIZE + 1 + HEADER_SIZE + 5; // inside the third header
    expect(decoder.push(all.subarray(0, cut)).map((f) => f.reqId)).toEqual([1, 2]);
    expect(decoder.push(all.subarray(cut)).map((f) => f.payload.toString())).toEqual(["ccc"]);
  });

  it("accepts a payload of exactly PAYLOAD_MAX", () => {
    const decoder = new FrameDecoder();
    const big = { ...frame(9, ""), payload: Buffer.alloc(PAYLOAD_MAX, 1) };
    expect(decoder.push(encodeFrame(big))).toHaveLength(1);
  });

  it("refuses a header announcing more than PAYLOAD_MAX", () => {
    const decoder = new FrameDecoder();
    const header = Buffer.alloc(HEADER_SIZE);
    header.writeUInt32LE(PAYLOAD_MAX + 1, 12);
    expect(() => decoder.push(header)).toThrow(FrameTooLargeError);
  });
});

describe("payload helpers", () => {
  it("NUL-terminates each string", () => {
    expect(nulTerminated("/a", "tok")).toEqual(Buffer.from("/a\0tok\0"));
  });

  it("splits list replies, tolerating an empty payload and a missing final NUL", () => {
    expect(splitNulList(Buffer.alloc(0))).toEqual([]);
    expect(splitNulList(Buffer.from("a\0b\0"))).toEqual(["a", "b"]);
    expect(splitNulList(Buffer.from("a\0b"))).toEqual(["a", "b"]);
    expect(firstString(Buffer.from("ENOENT\0"))).toBe("ENOENT");
  });

  it("names wire types", () => {
    expect(xsTypeName(XsType.WATCH_EVENT)).toBe("WATCH_EVENT");
    expect(xsTypeName(99)).toBe("UNKNOWN(99)");
  });
});

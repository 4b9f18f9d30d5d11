import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeFrame, FrameDecoder, type Frame } from "../protocol/frame";
import { nulTerminated } from "../protocol/payload";
import { XsType } from "../protocol/wire-types";
import { XenbusDeviceTransport } from "./xenbus-device-transport";

// A FIFO opened read-write stands in for /dev/xen/xenbus: what the transport
// writes comes back to its own blocking read loop, which is enough to check
// whole-message writes, the read loop, and that close() wakes the blocked read.

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "xenbus-fifo-"));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

it("writes whole frames, reads them back, and closes by waking its own read", async () => {
  const fifo = join(dir, "xenbus");
  execFileSync("mkfifo", [fifo]);
  const decoder = new FrameDecoder();
  const frames: Frame[] = [];
  let closed: (() => void) | undefined;
  const closedPromise = new Promise<void>((resolve) => (closed = resolve));
  let received: (() => void) | undefined;
  const receivedPromise = new Promise<void>((resolve) => (received = resolve));
  const transport = await XenbusDeviceTransport.open(fifo, {
    onData: (chunk) => {
      frames.push(...decoder.push(chunk));
      if (frames.length >= 1) received?.();
    },
    onClose: () => closed?.(),
  });
  expect(transport.description).toBe(`device:${fifo}`);
  await transport.send(encodeFrame({ type: XsType.READ, reqId: 9, txId: 0, payload: nulTerminated("/x") }));
  await receivedPromise;
  expect(frames[0]).toMatchObject({ type: XsType.READ, reqId: 9 });
  transport.close();
  await closedPromise;
  await expect(transport.send(Buffer.alloc(16))).rejects.toThrow("closed");
});

it("writes a request only once the previous one has its reply; a watch event is not a reply", async () => {
  // Over the FIFO every frame comes back to the transport itself: an echoed request stands in
  // for its reply, an echoed WATCH_EVENT for an unsolicited event.
  const fifo = join(dir, "xenbus-gate");
  execFileSync("mkfifo", [fifo]);
  const decoder = new FrameDecoder();
  const seen: number[] = [];
  const transport = await XenbusDeviceTransport.open(fifo, {
    onData: (chunk) => seen.push(...decoder.push(chunk).map((f) => f.reqId)),
    onClose: () => undefined,
  });
  const frame = (type: number, reqId: number): Buffer => encodeFrame({ type, reqId, txId: 0, payload: nulTerminated("/x") });
  // Three requests back to back: each is written after the previous echo ("reply") is read.
  await Promise.all([1, 2, 3].map((id) => transport.send(frame(XsType.READ, id))));
  // The third's own echo may still be in flight; the first two were needed to write it.
  expect(seen.slice(0, 2)).toEqual([1, 2]);
  // A request whose only "reply" is a watch event holds the next one back.
  await transport.send(frame(XsType.WATCH_EVENT, 4));
  let written = false;
  const held = transport.send(frame(XsType.READ, 5)).then(() => { written = true; });
  await new Promise((r) => setTimeout(r, 300));
  expect(written).toBe(false);
  expect(seen).not.toContain(5);
  transport.close();
  await expect(held).rejects.toThrow("closed");
});

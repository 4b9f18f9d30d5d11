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

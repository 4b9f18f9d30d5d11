import { XenstoreClosedError, XenstoreError, XenstoreProtocolError, XenstoreTimeoutError } from "../errors";
import { encodeFrame, FrameDecoder, type Frame } from "../protocol/frame";
import { HEADER_SIZE } from "../protocol/limits";
import { nulTerminated } from "../protocol/payload";
import { XsType } from "../protocol/wire-types";
import type { TransportEvents, TransportFactory } from "../transport/transport";
import { Connection } from "./connection";

/** A transport whose far end is the test itself: it sees requests and scripts replies. */
function scripted(): { factory: TransportFactory; sent: Frame[]; events: () => TransportEvents; closed: () => boolean } {
  const sent: Frame[] = [];
  const decoder = new FrameDecoder();
  let events: TransportEvents | undefined;
  let closed = false;
  return {
    sent,
    events: () => {
      if (events === undefined) throw new Error("not opened");
      return events;
    },
    closed: () => closed,
    factory: (e) => {
      events = e;
      return Promise.resolve({
        description: "scripted",
        send: (bytes: Buffer) => {
          sent.push(...decoder.push(bytes));
          return Promise.resolve();
        },
        close: () => {
          closed = true;
        },
      });
    },
  };
}

const reply = (type: number, reqId: number, payload: Buffer): Buffer => encodeFrame({ type, reqId, txId: 0, payload });
const noWatch = { onWatchEvent: () => undefined, onClose: () => undefined };

describe("Connection", () => {
  it("matches out-of-order replies by req_id, including coalesced ones", async () => {
    const t = scripted();
    const c = await Connection.open(t.factory, noWatch);
    const a = c.request(XsType.READ, 0, nulTerminated("/a"), { op: "read", subject: "/a" }, 1000);
    const b = c.request(XsType.READ, 0, nulTerminated("/b"), { op: "read", subject: "/b" }, 1000);
    const [ra, rb] = t.sent;
    if (ra === undefined || rb === undefined) throw new Error("requests not sent");
    expect(ra.reqId).not.toBe(rb.reqId);
    expect(ra.reqId).not.toBe(0);
    // b's reply first, both in one chunk.
    t.events().onData(Buffer.concat([reply(XsType.READ, rb.reqId, Buffer.from("B")), reply(XsType.READ, ra.reqId, Buffer.from("A"))]));
    expect((await a).toString()).toBe("A");
    expect((await b).toString()).toBe("B");
  });

  it("routes watch events by type whatever their req_id, and tolerates a split header", async () => {
    const t = scripted();
    const seen: [string, string][] = [];
    await Connection.open(t.factory, { onWatchEvent: (p, tok) => seen.push([p, tok]), onClose: () => undefined });
    const event = encodeFrame({ type: XsType.WATCH_EVENT, reqId: 12345, txId: 9, payload: nulTerminated("/x/y", "tok") });
    t.events().onData(event.subarray(0, 7));
    t.events().onData(event.subarray(7));
    expect(seen).toEqual([["/x/y", "tok"]]);
  });

  it("maps XS_ERROR to XenstoreError with errno, op and path, keeping unknown errno names", async () => {
    const t = scripted();
    const c = await Connection.open(t.factory, noWatch);
    const p = c.request(XsType.READ, 0, nulTerminated("/local/domain/7/x"), { op: "read", subject: "/local/domain/7/x" }, 1000);
    const q = c.request(XsType.WRITE, 0, nulTerminated("/q"), { op: "write", subject: "/q" }, 1000);
    t.events().onData(reply(XsType.ERROR, t.sent[0]?.reqId ?? -1, nulTerminated("ENOENT")));
    t.events().onData(reply(XsType.ERROR, t.sent[1]?.reqId ?? -1, nulTerminated("EWEIRD")));
    await expect(p).rejects.toThrow("xenstore read /local/domain/7/x: ENOENT");
    await expect(p).rejects.toBeInstanceOf(XenstoreError);
    await expect(q).rejects.toMatchObject({ errno: "EWEIRD", op: "write", subject: "/q" });
  });

  it("rejects a reply of the wrong type as a protocol error", async () => {
    const t = scripted();
    const c = await Connection.open(t.factory, noWatch);
    const p = c.request(XsType.READ, 0, nulTerminated("/a"), { op: "read" }, 1000);
    t.events().onData(reply(XsType.WRITE, t.sent[0]?.reqId ?? -1, nulTerminated("OK")));
    await expect(p).rejects.toBeInstanceOf(XenstoreProtocolError);
  });

  it("times out one request, drops its late reply, and keeps serving others", async () => {
    const t = scripted();
    const c = await Connection.open(t.factory, noWatch);
    const slow = c.request(XsType.READ, 0, nulTerminated("/slow"), { op: "read", subject: "/slow" }, 30);
    await expect(slow).rejects.toBeInstanceOf(XenstoreTimeoutError);
    await expect(slow).rejects.toThrow("xenstore read /slow: no reply within 30 ms");
    expect(c.outstanding).toBe(0);
    t.events().onData(reply(XsType.READ, t.sent[0]?.reqId ?? -1, Buffer.from("late")));
    const next = c.request(XsType.READ, 0, nulTerminated("/n"), { op: "read" }, 1000);
    t.events().onData(reply(XsType.READ, t.sent[1]?.reqId ?? -1, Buffer.from("ok")));
    expect((await next).toString()).toBe("ok");
  });

  it("rejects every pending request when the transport closes", async () => {
    const t = scripted();
    let closedWith: Error | undefined | "not called" = "not called";
    const c = await Connection.open(t.factory, { onWatchEvent: () => undefined, onClose: (e) => (closedWith = e) });
    const reqs = [1, 2, 3].map((i) => c.request(XsType.READ, 0, nulTerminated(`/${i}`), { op: "read" }, 0));
    t.events().onClose(new Error("EOF"));
    for (const r of reqs) await expect(r).rejects.toBeInstanceOf(XenstoreClosedError);
    expect(closedWith).toBeInstanceOf(Error);
    await expect(c.request(XsType.READ, 0, nulTerminated("/x"), { op: "read" }, 0)).rejects.toBeInstanceOf(XenstoreClosedError);
  });

  it("drops the connection when the daemon announces an oversize reply", async () => {
    const t = scripted();
    const c = await Connection.open(t.factory, noWatch);
    const p = c.request(XsType.READ, 0, nulTerminated("/a"), { op: "read" }, 0);
    const header = Buffer.alloc(HEADER_SIZE);
    header.writeUInt32LE(XsType.READ, 0);
    header.writeUInt32LE(5000, 12);
    t.events().onData(header);
    await expect(p).rejects.toBeInstanceOf(XenstoreClosedError);
    expect(t.closed()).toBe(true);
    expect(c.closed).toBe(true);
  });
});

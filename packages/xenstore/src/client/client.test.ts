import {
  XenstoreClosedError,
  XenstoreConnectError,
  XenstoreError,
  XenstoreInvalidArgumentError,
  XenstorePayloadTooLargeError,
  XenstoreTimeoutError,
  XenstoreTransactionConflictError,
} from "../errors";
import { waitForEvent } from "../testing/contract";
import { FakeXenstored } from "../testing/fake-xenstored";
import { XsType } from "../protocol/wire-types";
import { defaultEndpoints, defaultTransport } from "../transport/default-transport";
import { unixSocketTransport } from "../transport/unix-socket-transport";
import { XenstoreClient } from "./client";

let fake: FakeXenstored;
let client: XenstoreClient;

beforeEach(async () => {
  fake = await FakeXenstored.start();
  client = await fake.connect({ timeoutMs: 1000, watchReconnectDelayMs: 10 });
});

afterEach(async () => {
  await client.close();
  await fake.stop();
});

const sentOfType = (type: number): Buffer[] => fake.requests.filter((r) => r.type === type).map((r) => r.payload);

describe("XenstoreClient against the fake", () => {
  it("times out per request (default and per-call) and recovers", async () => {
    fake.dropReply = (r) => r.type === XsType.READ;
    await client.write("/t", "v");
    await expect(client.read("/t", { timeoutMs: 20 })).rejects.toBeInstanceOf(XenstoreTimeoutError);
    fake.dropReply = undefined;
    expect(await client.readString("/t")).toBe("v");
  });

  it("refuses an oversize request without sending anything", async () => {
    const before = fake.requests.length;
    const err = await client.write("/big", "x".repeat(5000)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(XenstorePayloadTooLargeError);
    expect((err as XenstorePayloadTooLargeError).message).toMatch(/^xenstore write \/big: payload of 5005 bytes exceeds 4096/);
    expect(fake.requests.length).toBe(before);
    expect(client.connected).toBe(true);
  });

  it("rejects invalid arguments before sending", async () => {
    await expect(client.read("")).rejects.toBeInstanceOf(XenstoreInvalidArgumentError);
    await expect(client.read("/a\0b")).rejects.toBeInstanceOf(XenstoreInvalidArgumentError);
    await expect(client.getDomainPath(-1)).rejects.toBeInstanceOf(XenstoreInvalidArgumentError);
  });

  it("reconnects on the next request after the daemon drops the connection", async () => {
    const pending = client.read("/local", { timeoutMs: 0 });
    fake.dropReply = () => true;
    await new Promise((r) => setImmediate(r));
    fake.dropReply = undefined;
    fake.disconnectAll();
    await expect(pending).rejects.toBeInstanceOf(XenstoreClosedError);
    const generation = client.connectionGeneration;
    expect(await client.directory("/local")).toEqual(["domain"]);
    expect(client.connectionGeneration).toBe(generation + 1);
  });

  it("re-registers watches after a drop, on its own, and delivers their new registration fire", async () => {
    await client.mkdir("/w");
    const watch = await client.watch("/w", { initialFire: "swallow" });
    fake.disconnectAll();
    // No request from us: the background reconnect restores the watch.
    const fired = await waitForEvent(watch, (e) => e.path === "/w", 2000);
    expect(fired.token).toBe(watch.token);
    expect(fake.watchCount).toBe(1);
    const other = await fake.connect();
    await other.write("/w/x", "1");
    await waitForEvent(watch, (e) => e.path === "/w/x", 2000);
    await other.close();
    await watch.return();
    expect(fake.watchCount).toBe(0);
  });

  it("fails a transaction whose connection was lost instead of reusing its tx_id", async () => {
    await expect(
      client.transaction(async (tx) => {
        await tx.write("/a", "1");
        client.dropConnection();
        await tx.write("/b", "2");
      }),
    ).rejects.toBeInstanceOf(XenstoreClosedError);
    expect(await client.tryRead("/a")).toBeUndefined();
  });

  it("retries conflicting commits up to the bound, sending T each time", async () => {
    fake.failCommits(100);
    let runs = 0;
    const err = await client
      .transaction(
        async (tx) => {
          runs += 1;
          await tx.write("/r", String(runs));
        },
        { maxAttempts: 4, backoffMs: 1 },
      )
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(XenstoreTransactionConflictError);
    expect(err).toBeInstanceOf(XenstoreError);
    expect((err as XenstoreTransactionConflictError).attempts).toBe(4);
    expect(runs).toBe(4);
    expect(sentOfType(XsType.TRANSACTION_END).map((p) => p.toString())).toEqual(Array(4).fill("T\0"));
    expect(await client.tryRead("/r")).toBeUndefined();
  });

  it("succeeds when a retry commits, and uses the client's default bound", async () => {
    fake.failCommits(2);
    let runs = 0;
    await client.transaction(async (tx) => {
      runs += 1;
      await tx.write("/ok", "yes");
    });
    expect(runs).toBe(3);
    expect(await client.readString("/ok")).toBe("yes");
  });

  it("aborts with F when the body throws, and retries an EAGAIN thrown inside the body", async () => {
    await expect(
      client.transaction(async (tx) => {
        await tx.write("/x", "1");
        throw new Error("nope");
      }),
    ).rejects.toThrow("nope");
    expect(sentOfType(XsType.TRANSACTION_END).map((p) => p.toString())).toEqual(["F\0"]);

    let runs = 0;
    await client.transaction((tx) => {
      runs += 1;
      if (runs === 1) return Promise.reject(new XenstoreError("EAGAIN", "read", "/x"));
      return tx.write("/x", "2");
    });
    expect(runs).toBe(2);
  });

  it("enforces permissions for an unprivileged connection", async () => {
    const guestSocket = await fake.listenAs(5);
    const guest = await XenstoreClient.connect({ transport: unixSocketTransport(guestSocket) });
    try {
      await client.write("/local/domain/5/secret", "s");
      await expect(guest.read("/local/domain/5/secret")).rejects.toMatchObject({ errno: "EACCES", op: "read" });
      await client.setPermissions("/local/domain/5/secret", [
        { domid: 0, access: "none" },
        { domid: 5, access: "read" },
      ]);
      expect(await guest.readString("/local/domain/5/secret")).toBe("s");
      await expect(guest.write("/local/domain/5/secret", "x")).rejects.toMatchObject({ errno: "EACCES" });
      await expect(guest.resumeDomain(5)).rejects.toMatchObject({ errno: "EACCES", op: "resume" });
    } finally {
      await guest.close();
    }
  });

  it("@releaseDomain fires once per shutdown until XS_RESUME re-arms it (cxenstored semantics)", async () => {
    fake.introduceDomain(3);
    const watch = await client.watch("@releaseDomain", { initialFire: "swallow" });
    fake.shutdownDomain(3);
    await waitForEvent(watch, (e) => e.path === "@releaseDomain", 1000);
    fake.shutdownDomain(3); // suppressed
    await new Promise((r) => setTimeout(r, 30));
    expect(watch.queued).toBe(0);
    await client.resumeDomain(3);
    fake.shutdownDomain(3);
    await waitForEvent(watch, (e) => e.path === "@releaseDomain", 1000);
    await watch.return();
  });

  it("refuses a duplicate token and an already aborted signal", async () => {
    const w = await client.watch("/local", { token: "same" });
    await expect(client.watch("/local/domain", { token: "same" })).rejects.toBeInstanceOf(XenstoreInvalidArgumentError);
    await expect(client.watch("/local", { signal: AbortSignal.abort() })).rejects.toThrow();
    await w.return();
  });

  it("fails watches when the client closes", async () => {
    const w = await client.watch("/local", { initialFire: "swallow" });
    const next = w.next();
    await client.close();
    await expect(next).rejects.toBeInstanceOf(XenstoreClosedError);
    expect(await w.next()).toEqual({ value: undefined, done: true });
  });

  it("reports every endpoint it tried when none answers", async () => {
    const transport = defaultTransport(["/nonexistent/socket", "/dev/nonexistent-xenbus"]);
    await expect(XenstoreClient.connect({ transport })).rejects.toBeInstanceOf(XenstoreConnectError);
    expect(defaultEndpoints({ XENSTORED_PATH: "/custom" })).toEqual([
      "/custom",
      "/run/xenstored/socket",
      "/var/run/xenstored/socket",
      "/dev/xen/xenbus",
    ]);
    expect(defaultEndpoints({})[0]).toBe("/run/xenstored/socket");
  });
});

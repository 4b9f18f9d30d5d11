import type { XenstoreClient } from "../client/client";
import type { XenstoreWatch, WatchEvent } from "../client/watch";
import {
  XenstoreError,
  XenstorePayloadTooLargeError,
  XenstoreTransactionConflictError,
  XenstoreClosedError,
} from "../errors";
import { PAYLOAD_MAX } from "../protocol/limits";

// The behaviours every xenstore endpoint must show this client: run against
// the fake in unit tests, and against real oxenstored/cxenstored in dom0.
// It only touches a prefix it creates and removes, and relies only on what
// docs/misc/xenstore.txt promises (plus dom0's privileges), not on the fake.

export interface ContractOptions {
  /** Root of every node the suite touches; created first, removed at the end. */
  prefix?: string;
  /** A running guest's domid, to also check XS_RESUME and guest ACL entries on real Xen. */
  guestDomid?: number;
  /** How long to wait for an expected watch event (default 2000 ms; raise under TCG). */
  eventTimeoutMs?: number;
}

/** Waits for an event matching `match`, skipping others (spurious fires are legal). */
export async function waitForEvent(
  watch: XenstoreWatch,
  match: (event: WatchEvent) => boolean,
  timeoutMs: number,
): Promise<WatchEvent> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const remaining = deadline - Date.now();
    if (remaining <= 0) throw new Error(`no matching watch event on ${watch.path} within ${timeoutMs} ms`);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => {
        resolve("timeout");
      }, remaining);
    });
    const result = await Promise.race([watch.next(), timeout]);
    clearTimeout(timer);
    if (result === "timeout") throw new Error(`no matching watch event on ${watch.path} within ${timeoutMs} ms`);
    if (result.done === true) throw new Error(`watch on ${watch.path} ended while waiting`);
    if (match(result.value)) return result.value;
  }
}

/** Resolves after `ms`, letting stray events arrive. */
const settle = (ms: number): Promise<void> =>
  new Promise((resolve) => {
    setTimeout(resolve, ms);
  });

async function expectXenstoreError(promise: Promise<unknown>, errno: string, op: string): Promise<XenstoreError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(XenstoreError);
    const xsErr = err as XenstoreError;
    expect(xsErr.errno).toBe(errno);
    expect(xsErr.op).toBe(op);
    return xsErr;
  }
  throw new Error(`expected ${op} to fail with ${errno}`);
}

let suiteCounter = 0;

/**
 * Registers a Jest `describe` block of client behaviours. `connect` must return
 * a NEW connected client each call (some tests open their own and close it).
 */
export function describeXenstoreContract(
  name: string,
  connect: () => Promise<XenstoreClient>,
  options: ContractOptions = {},
): void {
  suiteCounter += 1;
  const prefix = options.prefix ?? `/fastsuspend-contract-${process.pid}-${Date.now()}-${suiteCounter}`;
  const eventTimeout = options.eventTimeoutMs ?? 2000;

  describe(`xenstore contract: ${name}`, () => {
    let client: XenstoreClient;
    let counter = 0;
    /** A fresh, existing directory for one test. */
    const scratch = async (): Promise<string> => {
      counter += 1;
      const dir = `${prefix}/t${counter}`;
      await client.mkdir(dir);
      return dir;
    };

    beforeAll(async () => {
      client = await connect();
      await client.rm(prefix).catch(() => undefined);
      await client.mkdir(prefix);
    });

    afterAll(async () => {
      await client.rm(prefix).catch(() => undefined);
      await client.close();
    });

    describe("reads and writes", () => {
      it("round-trips strings and arbitrary bytes", async () => {
        const dir = await scratch();
        await client.write(`${dir}/text`, "hello");
        expect(await client.readString(`${dir}/text`)).toBe("hello");
        const bytes = Buffer.from([0, 1, 2, 0xff, 0, 0x7f]);
        await client.write(`${dir}/bytes`, bytes);
        expect(Buffer.compare(await client.read(`${dir}/bytes`), bytes)).toBe(0);
        await client.write(`${dir}/empty`, "");
        expect((await client.read(`${dir}/empty`)).length).toBe(0);
      });

      it("maps a missing node to a typed ENOENT naming the operation and path", async () => {
        const dir = await scratch();
        const err = await expectXenstoreError(client.read(`${dir}/missing`), "ENOENT", "read");
        expect(err.subject).toBe(`${dir}/missing`);
        expect(err.message).toBe(`xenstore read ${dir}/missing: ENOENT`);
        expect(await client.tryRead(`${dir}/missing`)).toBeUndefined();
        expect(await client.tryReadString(`${dir}/missing`)).toBeUndefined();
      });

      it("maps a malformed path to EINVAL", async () => {
        await expectXenstoreError(client.read(`${prefix}//double-slash`), "EINVAL", "read");
      });

      it("creates missing parents on write and lists children", async () => {
        const dir = await scratch();
        await client.write(`${dir}/a/b/c`, "1");
        await client.write(`${dir}/a/d`, "2");
        expect((await client.directory(`${dir}/a`)).sort()).toEqual(["b", "d"]);
        expect(await client.directory(`${dir}/a/d`)).toEqual([]);
        expect(await client.readString(`${dir}/a/b`)).toBe("");
      });

      it("mkdir is idempotent and keeps an existing value", async () => {
        const dir = await scratch();
        await client.write(`${dir}/k`, "keep");
        await client.mkdir(`${dir}/k`);
        expect(await client.readString(`${dir}/k`)).toBe("keep");
      });

      it("rm removes a subtree and tolerates an absent node", async () => {
        const dir = await scratch();
        await client.write(`${dir}/x/y`, "1");
        await client.rm(`${dir}/x`);
        expect(await client.tryRead(`${dir}/x/y`)).toBeUndefined();
        expect(await client.directory(dir)).toEqual([]);
        await client.rm(`${dir}/never-existed`);
      });

      it("matches pipelined replies to their requests", async () => {
        const dir = await scratch();
        const n = 48;
        await Promise.all(Array.from({ length: n }, (_, i) => client.write(`${dir}/n${i}`, `value-${i}`)));
        const values = await Promise.all(Array.from({ length: n }, (_, i) => client.readString(`${dir}/n${i}`)));
        expect(values).toEqual(Array.from({ length: n }, (_, i) => `value-${i}`));
      });

      it("refuses an oversize request before sending, and stays usable", async () => {
        const dir = await scratch();
        const write = client.write(`${dir}/big`, Buffer.alloc(PAYLOAD_MAX));
        await expect(write).rejects.toBeInstanceOf(XenstorePayloadTooLargeError);
        // Exactly at the limit is sent (path + NUL + value == PAYLOAD_MAX). Real daemons may
        // still refuse the node size by quota (2048 bytes by default: E2BIG/EQUOTA/ENOSPC),
        // but with a typed error, and the connection must survive either way.
        const path = `${dir}/fits`;
        const size = PAYLOAD_MAX - Buffer.byteLength(path) - 1;
        try {
          await client.write(path, Buffer.alloc(size, 0x61));
          expect((await client.read(path)).length).toBe(size);
        } catch (err) {
          expect(err).toBeInstanceOf(XenstoreError);
        }
        expect(await client.directory(dir)).toBeInstanceOf(Array);
      });

      it("readPort accepts only a canonical decimal port", async () => {
        const dir = await scratch();
        const cases: [string, number | undefined][] = [
          ["", undefined],
          [" 5", undefined],
          ["5 ", undefined],
          ["12abc", undefined],
          ["0x10", undefined],
          ["007", undefined],
          ["-3", undefined],
          ["0", undefined],
          ["99999999999", undefined],
          ["42", 42],
        ];
        for (const [text, expected] of cases) {
          await client.write(`${dir}/port`, text);
          expect(await client.readPort(`${dir}/port`)).toBe(expected);
        }
        expect(await client.readPort(`${dir}/absent`)).toBeUndefined();
      });
    });

    describe("permissions and domains", () => {
      it("round-trips permissions", async () => {
        const dir = await scratch();
        await client.write(`${dir}/p`, "v");
        await client.setPermissions(`${dir}/p`, [{ domid: 0, access: "read" }]);
        expect(await client.getPermissions(`${dir}/p`)).toEqual([{ domid: 0, access: "read" }]);
        if (options.guestDomid !== undefined) {
          const acl = [
            { domid: 0, access: "none" as const },
            { domid: options.guestDomid, access: "both" as const },
          ];
          await client.setPermissions(`${dir}/p`, acl);
          expect(await client.getPermissions(`${dir}/p`)).toEqual(acl);
        }
      });

      it("answers domain queries", async () => {
        expect(await client.getDomainPath(0)).toBe("/local/domain/0");
        expect(await client.getDomainPath(7)).toBe("/local/domain/7");
        expect(await client.isDomainIntroduced(0)).toBe(true);
        expect(await client.isDomainIntroduced(32000)).toBe(false);
      });

      it("sends XS_RESUME and maps its answer", async () => {
        // For an unknown domain daemons differ (error or no-op); either way the answer is typed, not a hang.
        try {
          await client.resumeDomain(32000);
        } catch (err) {
          expect(err).toBeInstanceOf(XenstoreError);
        }
        if (options.guestDomid !== undefined) await client.resumeDomain(options.guestDomid);
      });
    });

    describe("watches", () => {
      it("fires once on registration, then for changes below the path", async () => {
        const dir = await scratch();
        const watch = await client.watch(dir, { initialFire: "deliver" });
        try {
          await waitForEvent(watch, (e) => e.path === dir, eventTimeout);
          await client.write(`${dir}/child`, "1");
          await waitForEvent(watch, (e) => e.path === `${dir}/child`, eventTimeout);
          await client.rm(`${dir}/child`);
          await waitForEvent(watch, (e) => e.path === `${dir}/child`, eventTimeout);
        } finally {
          await watch.return();
        }
        expect(await watch.next()).toEqual({ value: undefined, done: true });
      });

      it("can swallow the registration fire", async () => {
        const dir = await scratch();
        const watch = await client.watch(dir, { initialFire: "swallow" });
        try {
          await client.write(`${dir}/after`, "1");
          const first = await waitForEvent(watch, () => true, eventTimeout);
          expect(first.path).toBe(`${dir}/after`);
        } finally {
          await watch.return();
        }
      });

      it("routes events by token", async () => {
        const dir = await scratch();
        await client.mkdir(`${dir}/a`);
        await client.mkdir(`${dir}/b`);
        const a = await client.watch(`${dir}/a`, { initialFire: "swallow" });
        const b = await client.watch(`${dir}/b`, { initialFire: "swallow" });
        try {
          await client.write(`${dir}/b/x`, "1");
          const event = await waitForEvent(b, () => true, eventTimeout);
          expect(event.token).toBe(b.token);
          await settle(50);
          expect(a.queued).toBe(0);
        } finally {
          await a.return();
          await b.return();
        }
      });

      it("stops delivering after unwatch, and the same path can be watched again", async () => {
        const dir = await scratch();
        const first = await client.watch(dir, { initialFire: "swallow" });
        await first.return();
        await client.write(`${dir}/x`, "1");
        expect(await first.next()).toEqual({ value: undefined, done: true });
        const again = await client.watch(dir, { token: first.token, initialFire: "deliver" });
        await waitForEvent(again, (e) => e.path === dir, eventTimeout);
        await again.return();
      });

      it("ends the iteration when the AbortSignal fires", async () => {
        const dir = await scratch();
        const controller = new AbortController();
        const watch = await client.watch(dir, { signal: controller.signal, initialFire: "swallow" });
        const pending = watch.next();
        controller.abort();
        expect(await pending).toEqual({ value: undefined, done: true });
        expect(watch.active).toBe(false);
      });

      it("works as a for-await loop", async () => {
        const dir = await scratch();
        const watch = await client.watch(dir, { initialFire: "swallow" });
        void client.write(`${dir}/loop`, "1");
        for await (const event of watch) {
          if (event.path === `${dir}/loop`) break; // break calls return(), which unwatches
        }
        expect(watch.active).toBe(false);
      });

      it("accepts the special @releaseDomain and @introduceDomain paths", async () => {
        for (const special of ["@releaseDomain", "@introduceDomain"]) {
          const watch = await client.watch(special, { initialFire: "deliver" });
          await waitForEvent(watch, (e) => e.path === special, eventTimeout);
          await watch.return();
        }
      });
    });

    describe("transactions", () => {
      it("commits and returns the body's result", async () => {
        const dir = await scratch();
        const result = await client.transaction(async (tx) => {
          await tx.write(`${dir}/a`, "1");
          await tx.write(`${dir}/b`, "2");
          return (await tx.readString(`${dir}/a`)) + "!";
        });
        expect(result).toBe("1!");
        expect(await client.readString(`${dir}/b`)).toBe("2");
      });

      it("aborts on a thrown error and rethrows it", async () => {
        const dir = await scratch();
        const boom = new Error("boom");
        await expect(
          client.transaction(async (tx) => {
            await tx.write(`${dir}/never`, "1");
            throw boom;
          }),
        ).rejects.toBe(boom);
        expect(await client.tryRead(`${dir}/never`)).toBeUndefined();
      });

      it("retries after a conflicting write", async () => {
        const dir = await scratch();
        await client.write(`${dir}/counter`, "0");
        let attempts = 0;
        await client.transaction(async (tx) => {
          attempts += 1;
          const value = Number(await tx.readString(`${dir}/counter`));
          if (attempts === 1) await client.write(`${dir}/counter`, "10"); // outside the transaction
          await tx.write(`${dir}/counter`, String(value + 1));
        });
        expect(attempts).toBeGreaterThanOrEqual(2);
        expect(await client.readString(`${dir}/counter`)).toBe("11");
      });

      it("gives up after maxAttempts conflicts", async () => {
        const dir = await scratch();
        await client.write(`${dir}/c`, "0");
        let attempts = 0;
        const run = client.transaction(
          async (tx) => {
            attempts += 1;
            await tx.readString(`${dir}/c`);
            await client.write(`${dir}/c`, String(attempts)); // conflict every time
            await tx.write(`${dir}/c`, "tx");
          },
          { maxAttempts: 3 },
        );
        await expect(run).rejects.toBeInstanceOf(XenstoreTransactionConflictError);
        await run.catch((err: unknown) => {
          expect((err as XenstoreTransactionConflictError).attempts).toBe(3);
          expect((err as XenstoreTransactionConflictError).errno).toBe("EAGAIN");
        });
        expect(attempts).toBe(3);
        expect(await client.readString(`${dir}/c`)).toBe("3");
      });

      it("rejects use of a handle after the transaction ended", async () => {
        const dir = await scratch();
        const leaked = await client.transaction((tx) => Promise.resolve(tx));
        await expect(leaked.read(dir)).rejects.toBeInstanceOf(XenstoreClosedError);
      });
    });

    describe("connection", () => {
      it("reconnects on the next request and re-registers watches", async () => {
        const own = await connect();
        const dir = await scratch();
        const watch = await own.watch(dir, { initialFire: "swallow" });
        try {
          const before = own.connectionGeneration;
          own.dropConnection();
          expect(await own.readString(dir)).toBe("");
          expect(own.connectionGeneration).toBe(before + 1);
          // Re-registration fires once more (changes may have been missed), then changes flow again.
          await client.write(`${dir}/after-reconnect`, "1");
          await waitForEvent(watch, (e) => e.path === `${dir}/after-reconnect`, eventTimeout);
        } finally {
          await watch.return();
          await own.close();
        }
      });

      it("rejects requests after close()", async () => {
        const own = await connect();
        await own.close();
        await expect(own.read(prefix)).rejects.toBeInstanceOf(XenstoreClosedError);
      });
    });
  });
}

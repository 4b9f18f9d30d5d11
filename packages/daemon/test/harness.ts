// A daemon on the coordinator's fake Xen host, over a real unix socket in a temp dir, for one test
// file: a fresh world and directory per test, everything stopped and removed after it.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { FakeWorld } from "@fastsuspend/coordinator/testing";

import { DaemonClient, startService, type RunningService, type ServiceOptions } from "../src";

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface Harness {
  readonly world: FakeWorld;
  readonly dir: string;
  readonly socketPath: string;
  /** Starts the daemon: the file's defaults, then `extra`. */
  start(extra?: Partial<ServiceOptions>): Promise<RunningService>;
  /** A client on the daemon's socket (closed after the test). */
  client(timeoutMs?: number): Promise<DaemonClient>;
}

/**
 * Registers beforeEach/afterEach for a test file. The defaults suit tests that time hand-overs in
 * tens of ms: short suspend timeouts, no toolstack process, no cool-down after another tool.
 */
export function useDaemonHarness(prefix: string, defaults: Partial<ServiceOptions> = {}): Harness {
  let world: FakeWorld | undefined;
  let dir: string | undefined;
  let svc: RunningService | undefined;
  const clients: DaemonClient[] = [];
  const must = <T>(v: T | undefined, what: string): T => {
    if (v === undefined) throw new Error(`${what}: only inside a test`);
    return v;
  };
  beforeEach(async () => {
    world = await FakeWorld.create();
    dir = mkdtempSync(join(tmpdir(), prefix));
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await svc?.stop();
    svc = undefined;
    await world?.close();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });
  const h: Harness = {
    get world() {
      return must(world, "world");
    },
    get dir() {
      return must(dir, "dir");
    },
    get socketPath() {
      return join(h.dir, "daemon.sock");
    },
    async start(extra = {}) {
      const w = h.world;
      svc = await startService({
        xen: w.binding(),
        xs: w.xenstore,
        runDir: h.dir,
        session: { defaultTimeoutMs: 1000, lateSuspendGraceMs: 100 },
        toolstackUser: () => undefined,
        toolstackCooldownMs: 0,
        ...defaults,
        ...extra,
      });
      return svc;
    },
    async client(timeoutMs = 5000) {
      const c = await DaemonClient.connect({ socketPath: h.socketPath, timeoutMs });
      clients.push(c);
      return c;
    },
  };
  return h;
}

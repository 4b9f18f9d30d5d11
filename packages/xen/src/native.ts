// What build/Release/xen.node exports (node-pty style: a typed declaration of the addon), and the
// loader. process.dlopen keeps this free of require().
import { existsSync } from "node:fs";
import { join } from "node:path";

import { makeXenError } from "./errors";
import type { RawEvtchn } from "./evtchn";
import type { DomainInfo, XenStats } from "./interface";

export type NativeEvtchnHandle = RawEvtchn;

export interface NativeXenControl {
  getInfo(domid: number): DomainInfo;
  listDomains(): DomainInfo[];
  pause(domid: number): void;
  unpause(domid: number): void;
  shutdown(domid: number, reason: number): void;
  resume(domid: number, fast: boolean): void;
  resumeAsync(domid: number, fast: boolean): Promise<void>;
  allocUnbound(domid: number, remoteDomid: number): number;
  subscribeForSuspend(domid: number, port: number): void;
  hvmCallbackIrq(domid: number): bigint;
  domctl(cmd: number, domid: number, payload: Buffer): Buffer;
  isClosed(): boolean;
  /** Deferred until in-flight resumeAsync calls finish. */
  close(): void;
}

export interface NativeConstants {
  domctlInterfaceVersion: number;
  domctlSize: number;
  domctlPayloadOffset: number;
  domctlPayloadSize: number;
  hypervisorDomctl: number;
  domidFirstReserved: number;
  domidSelf: number;
  virqDomExc: number;
  domctlSubscribe: number;
}

export interface NativeAddon {
  /** Opens /dev/xen/evtchn (throws XenError from xenevtchn_open). */
  EvtchnHandle: new () => NativeEvtchnHandle;
  /** Opens privcmd through xc_interface_open (throws XenError). */
  XenControl: new () => NativeXenControl;
  setErrorFactory(
    factory: (call: string, args: string, errno: number, code: string, message: string, detail: string) => Error,
  ): void;
  errnoName(errno: number): string;
  /** Process-wide open handles and bound ports. */
  stats(): XenStats;
  /** open + fcntl(F_SETLK) one-byte write lock; the fd. XenError EAGAIN if another process holds it. */
  suspendLockAcquire(path: string): number;
  /** open + flock(LOCK_EX|LOCK_NB), as libxl__lock_file but not waiting; the fd. XenError EAGAIN if held. */
  toolstackLockAcquire(path: string): number;
  /** unlink(path) then close(fd). */
  suspendLockRelease(fd: number, path: string): void;
  /** Bench probes: a bare call into the addon, and an AsyncWorker round trip. */
  noop(): void;
  noopAsync(): Promise<void>;
  constants: NativeConstants;
}

/** dist/native.js and src/native.ts sit at the same depth: ../build/Release/xen.node. */
export const DEFAULT_ADDON_PATH = join(__dirname, "..", "build", "Release", "xen.node");

const cache = new Map<string, NativeAddon>();

export function addonBuilt(path: string = DEFAULT_ADDON_PATH): boolean {
  return existsSync(path);
}

export function loadAddon(path: string = DEFAULT_ADDON_PATH): NativeAddon {
  const hit = cache.get(path);
  if (hit !== undefined) return hit;
  const mod = { exports: {} as NativeAddon };
  process.dlopen(mod, path);
  mod.exports.setErrorFactory(makeXenError);
  cache.set(path, mod.exports);
  return mod.exports;
}

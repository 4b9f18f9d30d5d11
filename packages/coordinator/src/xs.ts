// The slice of XenstoreClient the coordinator uses, as an interface: XenstoreClient satisfies it
// structurally, and tests may pass anything else that does.
import type { Permission, WatchEvent } from "@fastsuspend/xenstore";

export interface XsTransactionLike {
  tryReadString(path: string): Promise<string | undefined>;
  write(path: string, value: string): Promise<void>;
}

export interface XsWatchLike extends AsyncIterator<WatchEvent> {
  readonly queued: number;
  close(): Promise<void>;
}

export interface XenstoreLike {
  tryReadString(path: string): Promise<string | undefined>;
  readPort(path: string): Promise<number | undefined>;
  write(path: string, value: string): Promise<void>;
  watch(path: string, options?: { signal?: AbortSignal }): Promise<XsWatchLike>;
  transaction<T>(body: (tx: XsTransactionLike) => Promise<T>): Promise<T>;
  /** XS_RESUME: cxenstored fires @releaseDomain again for the domain only after this. */
  resumeDomain(domid: number): Promise<void>;
  getPermissions(path: string): Promise<Permission[]>;
  setPermissions(path: string, permissions: readonly Permission[]): Promise<void>;
}

export const domainPath = (domid: number): string => `/local/domain/${domid}`;
export const suspendChannelKey = (domid: number): string => `${domainPath(domid)}/device/suspend/event-channel`;
export const controlShutdownKey = (domid: number): string => `${domainPath(domid)}/control/shutdown`;
export const featureSuspendKey = (domid: number): string => `${domainPath(domid)}/control/feature-suspend`;

export * from "./constants";
export * from "./errors";
export type * from "./interface";
export { EvtchnPoller, type RawEvtchn } from "./evtchn";
export { openXen, NativeXenBinding, PRIVCMD_PATH, type OpenXenOptions } from "./real";
export { loadAddon, addonBuilt, DEFAULT_ADDON_PATH, type NativeAddon } from "./native";
export { DomainLockTable, SuspendLockTable, type LockPrimitives } from "./suspend-lock";
export { parseProcLocks, lockWaiters, splitDev, fdHasLockWaiters, type LockLine } from "./proc-locks";

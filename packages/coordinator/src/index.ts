// @fastsuspend/coordinator: the save side's suspend state machine over XenBinding + xenstore.
export { DomainLocks } from "./domain-locks";
export { SuspendSession, resolveXsResume, type SessionOptions, type SessionState, type SuspendOptions, type SuspendResult, type ResumeOptions, type ResumeResult, type CycleTimings, type CloseReport, type XsResumeMode } from "./session";
export { detect, readGuestChannel, type Capabilities, type ChannelStatus, type GuestChannel, type DetectOptions } from "./detect";
export { choosePath, fallbackOrder, assertSuspendable } from "./choose";
export { TRIGGERS, NOTIFICATIONS, BASELINE_PATH, pathName, parsePath, allPathNames, orderedPaths, type Trigger, type Notification, type PathName, type SuspendPath } from "./paths";
export { CoordinatorError, SuspendTimeoutError, COORDINATOR_ERROR_CODES, isCoordinatorError, isDomainEnded, errorText, type CoordinatorErrorCode, type TimeoutDetails } from "./errors";
export { summarize, type Summary } from "./stats";
export { CheckpointRunner, type CheckpointOptions, type CheckpointHooks, type CheckpointStats, type CheckpointCounts, type CheckpointSummary, type CheckpointStop, type CycleOutcome, type CycleVerdict } from "./checkpoint";
export { installSignalGuard, type SignalGuardOptions, type SignalSource } from "./signal-guard";
export { resumeSuspended, type StandaloneResumeOptions } from "./resume";
export { isSuspended, domainWaitState, domainState, domainStateText, shutdownReasonText, type DomainState, type WaitState } from "./domain-state";
export * from "./hv-notify";
export { controlShutdownKey, featureSuspendKey, suspendChannelKey, type XenstoreLike, type XsTransactionLike, type XsWatchLike } from "./xs";
export { msSince, now, sleep } from "./clock";

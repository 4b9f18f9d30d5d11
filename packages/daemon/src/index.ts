// @fastsuspend/daemon: fastsuspendd (the dom0 daemon) as a library, and its client (which
// `@fastsuspend/daemon/client` gives alone, without loading the daemon).
export { Daemon, type DaemonOptions } from "./daemon";
export { toDaemonError } from "./to-daemon-error";
export type { ProgressSink } from "./loops";
export { DaemonServer, type ServerOptions } from "./server";
export { DaemonClient, defaultSocketPath, type DaemonClientOptions } from "./client";
export { startService, assertRoot, type ServiceOptions, type RunningService } from "./service";
export { Journal, recoverJournal, type JournalEntry, type RecoveryAction } from "./journal";
export { acquirePidLock, type PidLock } from "./pidlock";
export { KeyedQueue } from "./queue";
export { Counter, Gauge, Histogram, Registry, LATENCY_BUCKETS, PROMETHEUS_CONTENT_TYPE, escapeLabelValue, labelText, type Labels, type LabelValue, type GaugeSample } from "./metrics";
export { DaemonMetrics, failureReason, fallbackReason, domainLabels, type FailureReason, type DaemonView, type DomainView } from "./daemon-metrics";
export { MetricsHttpServer, MetricsListenError, parseListenAddress, isLoopback, type ListenAddress, type MetricsListenErrorCode, type MetricsHttpOptions } from "./metrics-http";
export { EventLoopLag, type LagReading } from "./loop-lag";
export * from "./protocol";
export { parseRequest, type Parsed } from "./parse-request";
export { toolstackUser, matchToolstackUser, ToolstackScanner, type ToolProcess, type ScannerOptions } from "./toolstack";
export { CriticalGate } from "./gate";

// What the daemon's parts share, so that each part (sessions, loops, requests, status) is a small
// file of its own instead of a section of one class: the bindings, the journal, the metrics, the
// per-domain queue that serialises each domain's work, the request gate, the domains and the
// settings resolved from DaemonOptions.
import type { SessionOptions, XenstoreLike } from "@fastsuspend/coordinator";
import type { XenBinding } from "@fastsuspend/xen";

import type { DaemonMetrics } from "./daemon-metrics";
import type { Domains } from "./domains";
import type { CriticalGate } from "./gate";
import type { Journal, ToolstackUser } from "./journal";
import type { LoopStore } from "./loop-store";
import type { KeyedQueue } from "./queue";

export interface DaemonSettings {
  idleMs: number;
  session: SessionOptions;
  toolstackUser: ToolstackUser;
  toolstackCooldownMs: number;
  /** A kept loop that cannot start yet after a daemon restart is tried again this often, for this long. */
  keptLoopRetry: { everyMs: number; forMs: number };
}

export interface DaemonContext {
  readonly xen: XenBinding;
  readonly xs: XenstoreLike;
  readonly journal: Journal;
  /** The loops `checkpoint.start` began, started again by the next daemon (loop-store.ts). */
  readonly loopStore: LoopStore;
  readonly metrics: DaemonMetrics;
  /** Time-critical work first: status and metrics wait for it (bounded). */
  readonly gate: CriticalGate;
  /** One domain's work at a time, in order. */
  readonly queue: KeyedQueue<number>;
  readonly domains: Domains;
  readonly settings: DaemonSettings;
  readonly log: (line: string) => void;
}

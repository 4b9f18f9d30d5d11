// What a command needs from the outside world, injectable so tests run on the fakes.
import type { SignalSource, XenstoreLike } from "@fastsuspend/coordinator";
import type { DaemonClient } from "@fastsuspend/daemon/client";
import type { XenBinding } from "@fastsuspend/xen";

export interface XenEnv {
  xen: XenBinding;
  xs: XenstoreLike;
  close(): Promise<void>;
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Deps {
  /** Opens Xen and xenstore (throws EnvironmentError/XenUnavailableError when it cannot). */
  openEnv: () => Promise<XenEnv>;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Runs a command and returns its exit code and wall time (bench-run's xl save -c). */
  spawnTimed?: (argv: string[]) => Promise<{ code: number; ms: number; stderr: string }>;
  /** Reads a small text file or undefined (xen version, xenstored flavour). */
  readText?: (path: string) => string | undefined;
  writeFile?: (path: string, text: string) => void;
  /** Replaces `path` whole or not at all (a temporary file renamed over it): metrics --output. */
  writeFileAtomic?: (path: string, text: string) => void;
  /** Signal source for the guard (default process). */
  signals?: SignalSource;
  exit?: (code: number) => void;
  /** fastsuspendd if it runs and answers, else undefined (absent: never use the daemon). */
  connectDaemon?: () => Promise<DaemonClient | undefined>;
  /** Whether stderr is a terminal: checkpoint then prints progress without --progress. */
  stderrIsTTY?: boolean;
  /** Time between checkpoint progress lines (default PROGRESS_EVERY_MS; tests shorten it). */
  progressEveryMs?: number;
}

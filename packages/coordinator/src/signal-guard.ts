// SIGINT/SIGTERM at any point must leave the guest running: interrupt what is in flight (a pending
// request is withdrawn), resume the domain if it is suspended, release everything, then exit.
import type { CloseReport, SuspendSession } from "./session";

export interface SignalGuardOptions {
  signals?: NodeJS.Signals[];
  /** Called instead of process.exit (tests). Default: exit with 128 + the signal number. */
  exit?: (code: number) => void;
  /** Told what close() did (e.g. to print it). */
  onClosed?: (signal: NodeJS.Signals, report: CloseReport) => void;
  /** Raised with the signal before anything else is done (e.g. to stop a checkpoint loop). */
  onSignal?: (signal: NodeJS.Signals) => void;
  /** Where signals come from (default process; tests pass an EventEmitter). */
  source?: SignalSource;
}

export interface SignalSource {
  on(event: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown;
  off(event: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown;
}

const SIGNAL_NUMBERS: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 2, SIGTERM: 15, SIGHUP: 1 };

/** Installs the guard; returns the function that removes it. A second signal is ignored. */
export function installSignalGuard(session: SuspendSession, opts: SignalGuardOptions = {}): () => void {
  const signals = opts.signals ?? ["SIGINT", "SIGTERM"];
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  let handling = false;
  const handler = (signal: NodeJS.Signals): void => {
    if (handling) return;
    handling = true;
    opts.onSignal?.(signal);
    session.interrupt();
    void session.close({ resumeIfSuspended: true }).then((report) => {
      opts.onClosed?.(signal, report);
      exit(128 + (SIGNAL_NUMBERS[signal] ?? 0));
    });
  };
  const source: SignalSource = opts.source ?? process;
  for (const s of signals) source.on(s, handler);
  return () => {
    for (const s of signals) source.off(s, handler);
  };
}

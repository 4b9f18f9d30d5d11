// Exit codes and the one-line error for each kind of failure.
import { isCoordinatorError } from "@fastsuspend/coordinator";
import { XenUnavailableError } from "@fastsuspend/xen";

export const EXIT = { ok: 0, failed: 1, usage: 2, environment: 3 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** Bad command line. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** Not root, no /dev/xen, no xenstored, an unknown or dying domain, dom0 given. */
export class EnvironmentError extends Error {
  override name = "EnvironmentError";
}

export function exitCodeFor(err: unknown): ExitCode {
  if (err instanceof UsageError) return EXIT.usage;
  if (err instanceof EnvironmentError || err instanceof XenUnavailableError) return EXIT.environment;
  // ESTATE from the coordinator at start: the domain is unknown, dying or dom0.
  if (isCoordinatorError(err, "ESTATE") && /does not exist|is dying|control domain/.test(err.message)) return EXIT.environment;
  return EXIT.failed;
}

export function errorLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return `fastsuspend: ${text.split("\n")[0] ?? text}`;
}

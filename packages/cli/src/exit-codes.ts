// Exit codes and the one-line error for each kind of failure.
import { isCoordinatorError, type CoordinatorErrorCode } from "@fastsuspend/coordinator";
import { isDaemonError } from "@fastsuspend/daemon/client";
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

/**
 * The domain given is not one to work on (unknown or gone, dying, dom0): exit 3, like the other
 * things about where the CLI runs. The same codes come from the coordinator and from fastsuspendd.
 */
const ENVIRONMENT_CODES: ReadonlySet<string> = new Set<CoordinatorErrorCode>(["ENODOMAIN", "EDYING", "ECONTROLDOMAIN"]);

export function exitCodeFor(err: unknown): ExitCode {
  if (err instanceof UsageError) return EXIT.usage;
  if (err instanceof EnvironmentError || err instanceof XenUnavailableError) return EXIT.environment;
  if ((isCoordinatorError(err) || isDaemonError(err)) && ENVIRONMENT_CODES.has(err.code)) return EXIT.environment;
  return EXIT.failed;
}

export function errorLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return `fastsuspend: ${text.split("\n")[0] ?? text}`;
}

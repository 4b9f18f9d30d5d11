// Anything thrown below the daemon, as the wire error a client gets: the coordinator's codes pass
// through as they are (protocol.ts defines the daemon's codes from them), Xen's ESRCH and EAGAIN
// get theirs, the rest is EINTERNAL. Nothing is classified by its message.
import { errorText, isCoordinatorError } from "@fastsuspend/coordinator";
import { isXenError } from "@fastsuspend/xen";

import { DaemonError } from "./protocol";

export function toDaemonError(err: unknown): DaemonError {
  if (err instanceof DaemonError) return err;
  if (isCoordinatorError(err)) return new DaemonError(err.code, err.message);
  if (isXenError(err, "ESRCH")) return new DaemonError("ENODOMAIN", err.message);
  if (isXenError(err, "EAGAIN")) return new DaemonError("EBUSY", `${err.message} (another process holds the domain's suspend lock: xl save/migrate/remus?)`);
  return new DaemonError("EINTERNAL", errorText(err));
}

// Resuming a suspended domain without a session (`fastsuspend resume`): no lock, no channels,
// like `xl` resuming after a cancelled save.
import type { XenBinding } from "@fastsuspend/xen";

import { msSince, now } from "./clock";
import { domainWaitState } from "./domain-state";
import { CoordinatorError } from "./errors";
import type { XenstoreLike } from "./xs";

export interface StandaloneResumeOptions {
  /** Cooperative (default true); false = full resume, the guest re-initialises its devices. */
  fast?: boolean;
  /** Send XS_RESUME afterwards (default true, as libxl). */
  xsResume?: boolean;
}

export async function resumeSuspended(
  xen: XenBinding,
  xs: XenstoreLike,
  domid: number,
  opts: StandaloneResumeOptions = {},
): Promise<{ resumeMs: number; xsResumeMs: number }> {
  if (domid === 0) throw new CoordinatorError("ECONTROLDOMAIN", domid, "domain 0 is the control domain: it cannot be resumed from here");
  const state = domainWaitState(xen, domid, "before resume");
  if (state !== "suspended") throw new CoordinatorError("ENOTSUSPENDED", domid, `domain ${domid} is not suspended: nothing to resume`);
  const t0 = now();
  xen.resume(domid, opts.fast ?? true);
  const resumeMs = msSince(t0);
  let xsResumeMs = 0;
  if (opts.xsResume ?? true) {
    const t1 = now();
    await xs.resumeDomain(domid);
    xsResumeMs = msSince(t1);
  }
  return { resumeMs, xsResumeMs };
}

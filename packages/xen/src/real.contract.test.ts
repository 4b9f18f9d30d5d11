// The same contract against the real addon, inside a Xen dom0 (the lab). jest.config.cjs only
// includes this file when /dev/xen/privcmd exists or FASTSUSPEND_REQUIRE_XEN=1; with the latter and
// no Xen, it fails loudly instead of passing by not running.
//
// Env: FASTSUSPEND_GUEST_DOMID=<domid> enables the suspend tests; the guest is asked to suspend by
// writing control/shutdown=suspend with `xenstore-write` (FASTSUSPEND_XENSTORE_WRITE overrides the
// command). FASTSUSPEND_SELF_DOMID (default 0), FASTSUSPEND_TIMEOUT_MS (default 5000).
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { promisify } from "node:util";

import { suspendLockPath } from "./constants";
import { openXen, PRIVCMD_PATH } from "./real";
import { flockInChild, holdSuspendLockInChild } from "./testing/lock-holder";
import { describeXenContract } from "./testing/contract";

const haveXen = existsSync(PRIVCMD_PATH);
const hasFlock = (): boolean => ["/usr/bin/flock", "/bin/flock"].some((p) => existsSync(p));
const required = process.env.FASTSUSPEND_REQUIRE_XEN === "1";

function intEnv(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === "") return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got ${v}`);
  return n;
}

if (!haveXen) {
  describe("real Xen contract", () => {
    it("needs a Xen dom0", () => {
      // Only reached when the config included this file (FASTSUSPEND_REQUIRE_XEN=1).
      throw new Error(
        `FASTSUSPEND_REQUIRE_XEN=${required ? "1" : "unset"} but ${PRIVCMD_PATH} does not exist: not running in a Xen dom0`,
      );
    });
  });
} else {
  const run = promisify(execFile);
  const writer = process.env.FASTSUSPEND_XENSTORE_WRITE ?? "xenstore-write";
  describeXenContract("native addon", () => openXen(), {
    selfDomid: intEnv("FASTSUSPEND_SELF_DOMID") ?? 0,
    guestDomid: intEnv("FASTSUSPEND_GUEST_DOMID"),
    requestSuspend: async (domid) => {
      await run(writer, [`/local/domain/${domid}/control/shutdown`, "suspend"]);
    },
    timeoutMs: intEnv("FASTSUSPEND_TIMEOUT_MS") ?? 5000,
    suspendLockExists: (path) => existsSync(path),
    holdSuspendLockElsewhere: (domid) => holdSuspendLockInChild(suspendLockPath(domid)),
    // util-linux flock(1) plays libxl; the lab's busybox dom0 has none (daemon.lab has real xl).
    ...(hasFlock() ? { flockElsewhere: flockInChild } : {}),
  });
}

// The one decoding of a domain's getinfo flags, as the waits, the daemon's checks and status use it.
import type { DomainInfo } from "@fastsuspend/xen";

import { domainState, domainStateText } from "../src";

const info = (o: Partial<DomainInfo>): DomainInfo => ({ domid: 3, shutdown: false, shutdownReason: null, shutdownReasonName: null, paused: false, dying: false, ...o }) as DomainInfo;

it("dying first, then shut down by reason (suspend, crash, the rest), then paused, else running", () => {
  const cases: [Partial<DomainInfo>, string, string][] = [
    [{}, "running", "running"],
    [{ paused: true }, "paused", "paused"],
    [{ shutdown: true, shutdownReason: 2, shutdownReasonName: "suspend" }, "suspended", "suspended"],
    [{ shutdown: true, shutdownReason: 3, shutdownReasonName: "crash" }, "crashed", "shutdown (crash)"],
    [{ shutdown: true, shutdownReason: 0, shutdownReasonName: "poweroff" }, "shutdown", "shutdown (poweroff)"],
    [{ shutdown: true, shutdownReason: 9, shutdownReasonName: null }, "shutdown", "shutdown (reason 9)"],
    // A dying domain may still show shut down (suspend): it is dying, not ours to resume.
    [{ dying: true, shutdown: true, shutdownReason: 2, shutdownReasonName: "suspend" }, "dying", "dying"],
    [{ paused: true, shutdown: true, shutdownReason: 2, shutdownReasonName: "suspend" }, "suspended", "suspended"],
  ];
  for (const [o, state, text] of cases) expect([o, domainState(info(o)), domainStateText(info(o))]).toEqual([o, state, text]);
  expect(domainStateText(undefined)).toBe("gone");
});

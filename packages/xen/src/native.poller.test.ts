// The addon's poller path (uv_poll on the fd, poll() before each xenevtchn_pending, callbacks,
// close from inside a callback, unref) exercised without Xen: a child node loads the addon with
// a tiny pipe-backed libxenevtchn stand-in LD_PRELOADed. Needs the addon built and a C compiler.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { addonBuilt } from "./native";

const stubDir = join(__dirname, "..", "test", "stub");
const haveCc = spawnSync("cc", ["--version"]).status === 0;

(addonBuilt() && haveCc ? describe : describe.skip)("native EvtchnHandle poller (stub libxenevtchn)", () => {
  it("delivers every port, survives close() from its callback, and unref lets node exit", () => {
    const so = join(mkdtempSync(join(tmpdir(), "fs-xen-")), "stub.so");
    execFileSync("cc", ["-shared", "-fPIC", "-O2", "-o", so, join(stubDir, "xenevtchn_stub.c")]);
    const r = spawnSync(process.execPath, [join(stubDir, "poller-check.cjs")], {
      env: { ...process.env, LD_PRELOAD: so },
      encoding: "utf8",
      timeout: 10000,
    });
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(out.events).toEqual([1, 101, 1]);
    expect(out.statsOpen).toEqual({ evtchnHandles: 1, boundPorts: 1, controlHandles: 0 });
    expect(out.notify0).toEqual({
      code: "ENOTCONN",
      call: "xenevtchn_notify",
      message: "xenevtchn_notify(port=0): ENOTCONN (Transport endpoint is not connected)",
    });
    expect(out.afterCloseEvents).toBe(1); // closed while handling the first: the second never comes
    expect(out.closed).toBe(true);
    expect(out.statsClosed).toEqual({ evtchnHandles: 0, boundPorts: 0, controlHandles: 0 });
    expect(out.closedNotify).toBe("EBADF");
  });
});

// openXen() on a machine without Xen, and the addon's own surface (when it is built).
import { existsSync } from "node:fs";

import { DOMCTL_LAYOUT_4_17 } from "./constants";
import { XenError, XenUnavailableError } from "./errors";
import { addonBuilt, loadAddon } from "./native";
import { openXen, PRIVCMD_PATH } from "./real";

describe("openXen", () => {
  (existsSync(PRIVCMD_PATH) ? it.skip : it)("says there is no /dev/xen when not in a dom0", () => {
    expect(() => openXen()).toThrow(XenUnavailableError);
    expect(() => openXen()).toThrow(/no \/dev\/xen: not running in a Xen dom0/);
  });

  it("says the addon is not built", () => {
    let err: unknown;
    try {
      openXen({ privcmdPath: "/dev/null", addonPath: "/nonexistent/xen.node" });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(XenUnavailableError);
    expect((err as XenUnavailableError).reason).toBe("addon-not-built");
  });
});

(addonBuilt() ? describe : describe.skip)("native addon (built)", () => {
  it("exports the 4.17 domctl layout and constants from the headers", () => {
    const c = loadAddon().constants;
    expect({
      interfaceVersion: c.domctlInterfaceVersion,
      size: c.domctlSize,
      payloadOffset: c.domctlPayloadOffset,
      payloadSize: c.domctlPayloadSize,
    }).toEqual(DOMCTL_LAYOUT_4_17);
    expect(c.virqDomExc).toBe(3);
    expect(c.domctlSubscribe).toBe(29);
    expect(c.hypervisorDomctl).toBe(36);
  });

  it("throws XenError instances naming the call and errno", () => {
    const addon = loadAddon();
    expect(addon.errnoName(3)).toBe("ESRCH");
    if (existsSync("/dev/xen/evtchn")) return;
    let err: unknown;
    try {
      new addon.EvtchnHandle();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(XenError);
    expect(err).toMatchObject({ call: "xenevtchn_open", code: "ENOENT", errno: 2 });
    expect(addon.stats()).toEqual({ evtchnHandles: 0, boundPorts: 0, controlHandles: 0 });
  });

  it("rejects bad arguments before calling Xen", () => {
    const addon = loadAddon();
    // Errors made by node-addon-api come from the main realm, not Jest's sandbox: match by text.
    expect(() => addon.errnoName(-1)).toThrow(/errno must be an integer in \[0, 4095\]/);
  });

  it("runs an AsyncWorker round trip", async () => {
    await expect(loadAddon().noopAsync()).resolves.toBeUndefined();
  });
});

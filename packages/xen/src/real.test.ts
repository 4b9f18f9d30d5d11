// openXen() on a machine without Xen, and the addon's own surface (when it is built).
import { closeSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { DOMCTL_LAYOUT_4_17 } from "./constants";
import { XenError, XenUnavailableError } from "./errors";
import { addonBuilt, loadAddon } from "./native";
import { openXen, PRIVCMD_PATH } from "./real";
import { SuspendLockTable } from "./suspend-lock";
import { fdHasLockWaiters } from "./proc-locks";
import { flockInChild, holdSuspendLockInChild } from "./testing/lock-holder";

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

// The fcntl lock needs no Xen: exercise the real addon primitives in a temporary directory.
(addonBuilt() ? describe : describe.skip)("native suspend lock (no Xen needed)", () => {
  let dir: string;
  let table: SuspendLockTable;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "fs-lock-"));
    const addon = loadAddon();
    table = new SuspendLockTable(dir, {
      acquire: (path) => addon.suspendLockAcquire(path),
      release: (fd, path) => {
        addon.suspendLockRelease(fd, path);
      },
    });
  });
  afterEach(() => {
    table.releaseAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it("creates the libxl lock file, refuses a second in-process holder, unlinks on release", () => {
    const lock = table.lock(7);
    expect(lock.path).toBe(join(dir, "suspend-evtchn-7.lock"));
    expect(existsSync(lock.path)).toBe(true);
    expect(() => table.lock(7)).toThrow(/EBUSY.*already held by this process/);
    lock.release();
    expect(existsSync(lock.path)).toBe(false);
    lock.release();
  });

  it("is EAGAIN while another process holds it, and free once that process lets go", async () => {
    const letGo = await holdSuspendLockInChild(join(dir, "suspend-evtchn-9.lock"));
    let err: unknown;
    try {
      table.lock(9);
    } catch (e) {
      err = e;
    } finally {
      await letGo();
    }
    expect(err).toBeInstanceOf(XenError);
    expect(err).toMatchObject({ code: "EAGAIN", call: "fcntl(F_SETLK)" });
    expect((err as XenError).message).toContain("held by another process");
    expect(existsSync(join(dir, "suspend-evtchn-9.lock"))).toBe(false);
    table.lock(9).release();
  });

  it("a holder that dies (no unlink) leaves a stale file that is simply re-locked", () => {
    const path = join(dir, "suspend-evtchn-11.lock");
    const addon = loadAddon();
    const fd = addon.suspendLockAcquire(path);
    // Close without unlink, as a crashed libxl would leave it: the fcntl lock is gone with the fd.
    closeSync(fd);
    expect(existsSync(path)).toBe(true);
    const lock = table.lock(11);
    lock.release();
    expect(existsSync(path)).toBe(false);
  });
});

// libxl's userdata lock is a flock(2); libxl waits for it, we never do.
(addonBuilt() ? describe : describe.skip)("native toolstack (libxl userdata) lock (no Xen needed)", () => {
  let dir: string;
  let path: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "fs-userdata-"));
    path = join(dir, "userdata-l.5.00000000-0000-4000-8000-000000000005.domain-userdata-lock");
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it("is EAGAIN while libxl (flock) holds it; taken and unlinked on release once it lets go", async () => {
    const addon = loadAddon();
    const end = await flockInChild(path, "hold");
    let err: unknown;
    try {
      addon.toolstackLockAcquire(path);
    } catch (e) {
      err = e;
    } finally {
      await end();
    }
    expect(err).toBeInstanceOf(XenError);
    expect(err).toMatchObject({ code: "EAGAIN", call: "flock(LOCK_EX|LOCK_NB)" });
    const fd = addon.toolstackLockAcquire(path);
    expect(fdHasLockWaiters(fd)).toBe(false);
    addon.suspendLockRelease(fd, path);
    expect(existsSync(path)).toBe(false);
  });

  it("sees a libxl queued on it in /proc/locks, which gets it (on a fresh file) once released", async () => {
    const addon = loadAddon();
    const fd = addon.toolstackLockAcquire(path);
    const end = await flockInChild(path, "wait");
    const until = Date.now() + 5000;
    while (!fdHasLockWaiters(fd) && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    expect(fdHasLockWaiters(fd)).toBe(true);
    addon.suspendLockRelease(fd, path);
    // The waiter locked the unlinked inode; flock(1) has no libxl re-check, it just runs and exits 0.
    expect(await end()).toBe(0);
  });
});

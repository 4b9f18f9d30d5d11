// The real binding over the addon, and openXen(): the one entry point that says clearly why Xen is
// not usable here.
import { existsSync, mkdirSync } from "node:fs";

import { SUSPEND_LOCK_DIR, XEN_LIB_DIR, shutdownReasonCode, toolstackLockPath, type ShutdownReasonName } from "./constants";
import { isXenError, XenUnavailableError } from "./errors";
import { EvtchnPoller } from "./evtchn";
import type { DomainInfo, DomctlLayout, EvtchnHandle, OpenEvtchnOptions, SuspendLock, ToolstackLock, XenBinding, XenStats } from "./interface";
import { addonBuilt, DEFAULT_ADDON_PATH, loadAddon, type NativeAddon, type NativeXenControl } from "./native";
import { fdHasLockWaiters } from "./proc-locks";
import { DomainLockTable, SuspendLockTable } from "./suspend-lock";

export const PRIVCMD_PATH = "/dev/xen/privcmd";

export class NativeXenBinding implements XenBinding {
  readonly kind = "native" as const;
  readonly domctlLayout: DomctlLayout;
  readonly #addon: NativeAddon;
  readonly #xc: NativeXenControl;
  readonly #locks: SuspendLockTable;
  readonly #toolstackLocks: DomainLockTable;

  constructor(addon: NativeAddon, suspendLockDir: string = SUSPEND_LOCK_DIR, xenLibDir: string = XEN_LIB_DIR) {
    this.#addon = addon;
    this.#xc = new addon.XenControl();
    this.#locks = new SuspendLockTable(suspendLockDir, {
      acquire: (path) => {
        // libxl's XEN_RUN_DIR normally exists in a dom0; a bare one may lack it.
        mkdirSync(suspendLockDir, { recursive: true });
        return addon.suspendLockAcquire(path);
      },
      release: (fd, path) => {
        addon.suspendLockRelease(fd, path);
      },
    });
    this.#toolstackLocks = new DomainLockTable(
      "toolstack lock",
      (domid) => toolstackLockPath(domid, this.getInfo(domid).uuid, xenLibDir),
      {
        acquire: (path) => {
          mkdirSync(xenLibDir, { recursive: true });
          return addon.toolstackLockAcquire(path);
        },
        release: (fd, path) => {
          addon.suspendLockRelease(fd, path);
        },
        waiting: (fd) => fdHasLockWaiters(fd),
      },
    );
    const c = addon.constants;
    this.domctlLayout = {
      interfaceVersion: c.domctlInterfaceVersion,
      size: c.domctlSize,
      payloadOffset: c.domctlPayloadOffset,
      payloadSize: c.domctlPayloadSize,
    };
  }

  openEvtchn(opts: OpenEvtchnOptions = {}): EvtchnHandle {
    return new EvtchnPoller(new this.#addon.EvtchnHandle(), opts.poll ?? true);
  }
  getInfo(domid: number): DomainInfo {
    return this.#xc.getInfo(domid);
  }
  listDomains(): DomainInfo[] {
    return this.#xc.listDomains();
  }
  pause(domid: number): void {
    this.#xc.pause(domid);
  }
  unpause(domid: number): void {
    this.#xc.unpause(domid);
  }
  shutdown(domid: number, reason: ShutdownReasonName | number): void {
    this.#xc.shutdown(domid, shutdownReasonCode(reason));
  }
  resume(domid: number, fast: boolean): void {
    this.#xc.resume(domid, fast);
  }
  resumeAsync(domid: number, fast: boolean): Promise<void> {
    return this.#xc.resumeAsync(domid, fast);
  }
  allocUnbound(domid: number, remoteDomid: number): number {
    return this.#xc.allocUnbound(domid, remoteDomid);
  }
  subscribeForSuspend(domid: number, port: number): void {
    this.#xc.subscribeForSuspend(domid, port);
  }
  hvmCallbackIrq(domid: number): bigint {
    return this.#xc.hvmCallbackIrq(domid);
  }
  domctl(cmd: number, domid: number, payload: Buffer): Buffer {
    return this.#xc.domctl(cmd, domid, payload);
  }
  lockSuspend(domid: number): SuspendLock {
    return this.#locks.lock(domid);
  }
  lockToolstack(domid: number): ToolstackLock {
    return this.#toolstackLocks.lock(domid);
  }
  stats(): XenStats {
    return this.#addon.stats();
  }
  /** Also releases the suspend locks taken through this binding. */
  close(): void {
    this.#locks.releaseAll();
    this.#toolstackLocks.releaseAll();
    this.#xc.close();
  }
}

export interface OpenXenOptions {
  addonPath?: string;
  privcmdPath?: string;
}

/**
 * Opens the real binding. Throws XenUnavailableError with reason:
 *  - "no-xen": no /dev/xen/privcmd (not a Xen dom0, or xen-privcmd/xenfs not loaded)
 *  - "addon-not-built" / "addon-load-failed": build/Release/xen.node missing or unloadable
 *  - "not-root": EACCES/EPERM opening the hypervisor interface
 */
export function openXen(opts: OpenXenOptions = {}): XenBinding {
  const privcmd = opts.privcmdPath ?? PRIVCMD_PATH;
  const addonPath = opts.addonPath ?? DEFAULT_ADDON_PATH;
  if (!existsSync(privcmd)) {
    throw new XenUnavailableError("no-xen", {
      call: "openXen",
      args: privcmd,
      errno: 0,
      code: "ERR_NO_XEN",
      message: `no /dev/xen: not running in a Xen dom0 (${privcmd} is missing; in a dom0, load xen-privcmd and mount xenfs)`,
    });
  }
  if (!addonBuilt(addonPath)) {
    throw new XenUnavailableError("addon-not-built", {
      call: "openXen",
      args: addonPath,
      errno: 0,
      code: "ERR_XEN_ADDON_NOT_BUILT",
      message: `the native addon is not built (${addonPath}): run \`npm run build\` in packages/xen (needs libxen-dev)`,
    });
  }
  let addon: NativeAddon;
  try {
    addon = loadAddon(addonPath);
  } catch (err) {
    throw new XenUnavailableError("addon-load-failed", {
      call: "openXen",
      args: addonPath,
      errno: 0,
      code: "ERR_XEN_ADDON_LOAD",
      message: `cannot load ${addonPath}: ${err instanceof Error ? err.message : String(err)}`,
    });
  }
  try {
    return new NativeXenBinding(addon);
  } catch (err) {
    if (isXenError(err) && (err.code === "EACCES" || err.code === "EPERM")) {
      throw new XenUnavailableError("not-root", {
        call: err.call,
        args: err.args,
        errno: err.errno,
        code: err.code,
        message: `must run as root: ${err.message}`,
      });
    }
    throw err;
  }
}

// A vbd for a lab guest (test helper): the dom0 modules the lab image lacks (loop, xen-blkback),
// a hotplug script for a phy vbd on a loop device (Xen's own is bash; dom0 has busybox sh only),
// and the vbd the guests see (xvdb).
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { cacheDir, type Lab } from "@fastsuspend/lab";

export const VBD = "xvdb";
export const VBD_ID = 51728; // (202 << 8) | 16

const BLOCK_SCRIPT = [
  "#!/bin/sh",
  'case "$1" in',
  "add)",
  '  dev=$(xenstore-read "$XENBUS_PATH/params")',
  '  xenstore-write "$XENBUS_PATH/physical-device" "$(stat -L -c %t:%T "$dev")" "$XENBUS_PATH/physical-device-path" "$dev" "$XENBUS_PATH/hotplug-status" connected',
  "  ;;",
  "esac",
  "",
].join("\n");

/** dom0 modules the lab image lacks (xen-blkback, loop), from the lab's pinned Debian kernel package. */
function shareDom0BlockModules(lab: Lab): { loop: string; blkback: string } {
  const deb = join(cacheDir(), "debs", "linux-image-6.1.0-57-amd64_6.1.192-3_amd64.deb");
  const dir = mkdtempSync(join(tmpdir(), "gc-mods-"));
  execFileSync("sh", ["-c", `dpkg-deb --fsys-tarfile '${deb}' | tar -x -C '${dir}' --wildcards '*/kernel/drivers/block/loop.ko' '*/xen-blkback/xen-blkback.ko'`]);
  const k = join(dir, "lib", "modules", "6.1.0-57-amd64", "kernel", "drivers", "block");
  return { loop: lab.share(join(k, "loop.ko")), blkback: lab.share(join(k, "xen-blkback", "xen-blkback.ko")) };
}

/**
 * Loads loop and xen-blkback in dom0, installs the hotplug script as /tmp/gc-block, and backs
 * /dev/loopN with a zeroed image of `mb` MB at `image` (kept if it exists). Returns the `xl
 * block-attach` spec of a vbd on it.
 */
export async function prepareLoopVbd(lab: Lab, o: { loop: number; image: string; mb: number }): Promise<string> {
  // trixie's dom0 loads both at boot (stack-artefacts.ts); bookworm's takes them from the kernel package.
  const loaded = (await lab.exec("[ -d /sys/module/loop ] && [ -d /sys/module/xen_blkback ]")).code === 0;
  const mods = loaded ? [] : Object.entries(shareDom0BlockModules(lab)).map(([name, ko]) => `{ [ -d /sys/module/${name === "blkback" ? "xen_blkback" : name} ] || insmod ${ko}; }`);
  writeFileSync(join(lab.runDir, "share", "gc-block.sh"), BLOCK_SCRIPT);
  await lab.mustExec(
    [
      ...mods,
      "cp /lab/gc-block.sh /tmp/gc-block && chmod +x /tmp/gc-block",
      `[ -f ${o.image} ] || dd if=/dev/zero of=${o.image} bs=1M count=${o.mb} 2>/dev/null`,
      `losetup /dev/loop${o.loop} 2>/dev/null | grep -q ${o.image} || losetup /dev/loop${o.loop} ${o.image}`,
    ].join(" && "),
  );
  return `format=raw, vdev=${VBD}, access=rw, backendtype=phy, script=/tmp/gc-block, target=/dev/loop${o.loop}`;
}

/** Waits (bounded) until the guest's xvdb frontend is connected (state 4); returns the last state. */
export async function waitVbdConnected(lab: Lab, domid: number, timeoutMs = 60_000): Promise<string> {
  const fe = `/local/domain/${domid}/device/vbd/${VBD_ID}/state`;
  const out = await lab.mustExec(`i=0; until [ "$(xenstore-read ${fe} 2>/dev/null)" = 4 ]; do i=$((i+1)); [ $i -gt ${Math.ceil(timeoutMs / 100)} ] && break; sleep 0.1; done; xenstore-read ${fe}`, { timeoutMs: timeoutMs + 30_000 });
  return out.trim();
}

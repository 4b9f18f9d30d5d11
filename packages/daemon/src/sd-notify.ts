// Readiness for systemd (fastsuspendd.service is Type=notify): READY=1 once the API socket listens.
//
// sd_notify(3) is one datagram on the AF_UNIX SOCK_DGRAM socket that $NOTIFY_SOCKET names, and
// Node.js cannot send one: `dgram` is UDP only, `net` is stream only (connecting a stream socket
// to the datagram socket fails with EPROTOTYPE), and libuv refuses to wrap a unix datagram fd.
// The daemon has no native code of its own, so the datagram is sent by systemd-notify(1). What
// made that unreliable (the sender exits before PID 1 reads the message, which is then not
// attributed to the unit) is gone since systemd 246: systemd-notify waits (sd_notify_barrier) until
// the manager has processed it, unless --no-block. It sends with our PID when it has the privilege
// (CAP_SYS_ADMIN, which the unit does not grant) and from its own otherwise, so the unit says
// NotifyAccess=all. Outside systemd ($NOTIFY_SOCKET unset) this does nothing.
import { execFile } from "node:child_process";

/** Resolves true once systemd-notify succeeded, false when not under systemd or it failed (logged). */
export function notifyReady(status: string, log: (line: string) => void, env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  if (env.NOTIFY_SOCKET === undefined || env.NOTIFY_SOCKET === "") return Promise.resolve(false);
  return new Promise((resolve) => {
    execFile("systemd-notify", ["--ready", `--status=${status}`], { env, timeout: 10_000 }, (err, _stdout, stderr) => {
      if (err === null) {
        resolve(true);
        return;
      }
      // systemd kills the unit at TimeoutStartSec= without READY=1: say why it will.
      log(`systemd-notify --ready failed (${err.message.split("\n")[0]}${stderr.trim() === "" ? "" : `: ${stderr.trim()}`}): systemd will consider the start timed out`);
      resolve(false);
    });
  });
}

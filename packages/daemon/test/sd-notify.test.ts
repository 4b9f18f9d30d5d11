// READY=1 for systemd's Type=notify (src/sd-notify.ts), sent by systemd-notify to a stand-in for
// PID 1's notification socket: a unix datagram socket, which Node.js cannot open, so a small
// python3 receiver plays it (python3 is a host package of scripts/bootstrap.mjs, systemd-notify
// comes with systemd).
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { notifyReady } from "../src/sd-notify";

// Prints each datagram on one line ("|" for newlines) and closes the fds it carries, as PID 1
// does: systemd-notify's barrier waits for that close. Stops after BARRIER=1.
const RECEIVER = `
import array, os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(20)
print("bound", flush=True)
while True:
    msg, anc, _flags, _addr = s.recvmsg(4096, socket.CMSG_SPACE(64))
    for level, typ, data in anc:
        if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
            fds = array.array("i")
            fds.frombytes(data[: len(data) - len(data) % 4])
            for fd in fds:
                os.close(fd)
    text = msg.decode()
    print(text.replace("\\n", "|"), flush=True)
    if "BARRIER=1" in text:
        break
`;

const have = (tool: string): boolean => spawnSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" }).status === 0;
const missing = ["python3", "systemd-notify"].filter((t) => !have(t));

describe("sd-notify: READY=1 without systemd", () => {
  it("does nothing without $NOTIFY_SOCKET (run by hand, or in the lab's dom0)", async () => {
    const lines: string[] = [];
    await expect(notifyReady("listening", (l) => lines.push(l), {})).resolves.toBe(false);
    await expect(notifyReady("listening", (l) => lines.push(l), { NOTIFY_SOCKET: "" })).resolves.toBe(false);
    expect(lines).toEqual([]);
  });
});

(missing.length === 0 ? describe : describe.skip)(`sd-notify: READY=1 through systemd-notify${missing.length === 0 ? "" : ` (skipped: ${missing.join(", ")} not installed)`}`, () => {
  let dir: string;
  let receiver: ChildProcessWithoutNullStreams | undefined;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "fastsuspend-sdnotify-"));
  });
  afterEach(() => {
    receiver?.kill();
    receiver = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  it("sends READY=1 and the status, and waits until the receiver has processed it (barrier)", async () => {
    const sock = join(dir, "notify");
    const r = spawn("python3", ["-c", RECEIVER, sock]);
    receiver = r;
    let out = "";
    r.stdout.on("data", (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((res) => r.on("exit", (code) => { res(code); }));
    await new Promise<void>((res, rej) => {
      const t = setTimeout(() => { rej(new Error(`receiver did not bind: ${out}`)); }, 10_000);
      r.stdout.on("data", () => {
        if (out.includes("bound")) {
          clearTimeout(t);
          res();
        }
      });
    });
    const lines: string[] = [];
    const ok = await notifyReady("listening on /run/fastsuspend/daemon.sock", (l) => lines.push(l), { ...process.env, NOTIFY_SOCKET: sock });
    expect(lines).toEqual([]);
    expect(ok).toBe(true);
    // The receiver stops after BARRIER=1: systemd-notify asked for the barrier it then waited on
    // (without it, systemd may drop READY=1 from a sender that has already exited).
    expect(await exited).toBe(0);
    const got = out.split("\n").filter((l) => l !== "" && l !== "bound");
    expect(got[0]?.split("|")).toEqual(expect.arrayContaining(["READY=1", "STATUS=listening on /run/fastsuspend/daemon.sock"]));
    expect(got[got.length - 1]).toBe("BARRIER=1");
  }, 30_000);

  it("says so in the log when nothing receives the notification (systemd would time the start out)", async () => {
    const lines: string[] = [];
    await expect(notifyReady("listening", (l) => lines.push(l), { ...process.env, NOTIFY_SOCKET: join(dir, "nobody") })).resolves.toBe(false);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^systemd-notify --ready failed \(.*\): systemd will consider the start timed out$/);
  }, 30_000);
});

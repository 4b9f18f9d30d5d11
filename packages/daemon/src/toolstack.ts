// Is the toolstack working on this domain right now? For a guest without a suspend channel, `xl
// save`/`migrate`/`remus` take no lock: their only trace before they write control/shutdown is
// the process itself (xl, then libxl-save-helper). Checked before each of the daemon's cycles, so
// that the daemon does not trigger a suspend that the guest would serve for both (xl would never
// see it: it waits for @releaseDomain, and on its 60 s timeout resumes a running guest, which
// crashes it). A heuristic: it closes the window except for an xl started within the few ms
// between this check and our trigger (xl itself needs far longer to reach its own request).
import { readdir, readFile } from "node:fs/promises";

const TOOLS = new Set(["xl", "libxl-save-helper"]);
const VERBS = new Set(["save", "migrate", "remus", "migrate-receive", "--save-domain", "--restore-domain", "suspend", "pause", "shutdown", "destroy", "reboot"]);

/**
 * Describes a toolstack process working on the domain (by id or name), or undefined. Asynchronous:
 * a /proc scan costs a syscall per process, which is slow under emulation, and must not hold up
 * the event loop (a SIGTERM, the socket).
 */
export async function toolstackUser(domid: number, name: string | undefined, procDir = "/proc"): Promise<string | undefined> {
  let pids: string[];
  try {
    pids = (await readdir(procDir)).filter((p) => /^[0-9]+$/.test(p));
  } catch {
    return undefined;
  }
  const ids = new Set([String(domid), ...(name === undefined || name === "" ? [] : [name])]);
  for (const pid of pids) {
    let argv: string[];
    try {
      argv = (await readFile(`${procDir}/${pid}/cmdline`, "latin1")).split("\0").filter((a) => a !== "");
    } catch {
      continue; // gone meanwhile
    }
    const tool = (argv[0] ?? "").split("/").pop() ?? "";
    if (!TOOLS.has(tool)) continue;
    if (!argv.some((a) => VERBS.has(a))) continue;
    if (argv.slice(1).some((a) => ids.has(a))) return `${tool} (pid ${pid}): ${argv.slice(1).join(" ").slice(0, 80)}`;
  }
  return undefined;
}

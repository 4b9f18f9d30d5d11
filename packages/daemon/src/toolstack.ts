// Is the toolstack working on this domain right now? For a guest without a suspend channel, `xl
// save`/`migrate`/`remus` take no lock: their only trace before they write control/shutdown is
// the process itself (xl, then libxl-save-helper). Checked before each of the daemon's cycles, so
// that the daemon does not trigger a suspend that the guest would serve for both (xl would never
// see it: it waits for @releaseDomain, and on its 60 s timeout resumes a running guest, which
// crashes it). A heuristic: it closes the window except for an xl started within the few ms
// between this check and our trigger (xl itself needs far longer to reach its own request).
//
// Cost. Under TCG emulation every file read in dom0 is slow, and each asynchronous read is a round
// trip through libuv's thread pool that also waits behind whatever else the event loop has to do
// (requests from clients). So the scan reads the short /proc/PID/comm of every process (cheap for
// the kernel, unlike cmdline, which reads the other process's memory), a few at a time, and
// cmdline only for the rare process whose comm is a toolstack binary. Concurrent callers (several
// domains' loops) share one scan in flight, and a scan that started at most `maxAgeMs` ago is
// reused (default 0: only a scan still in flight is shared).
import { open, read, close } from "node:fs";
import { readdir } from "node:fs/promises";

const TOOLS = new Set(["xl", "libxl-save-helper"]);
/** What /proc/PID/comm shows for them: the executable's base name, cut to 15 bytes (TASK_COMM_LEN - 1). */
const COMMS = new Set([...TOOLS].map((t) => t.slice(0, 15)));
const VERBS = new Set(["save", "migrate", "remus", "migrate-receive", "--save-domain", "--restore-domain", "suspend", "pause", "shutdown", "destroy", "reboot"]);

export interface ToolProcess {
  pid: string;
  /** Base name of argv[0] ("xl", "libxl-save-helper"). */
  tool: string;
  argv: string[];
}

export interface ScannerOptions {
  procDir?: string;
  /** Files read at once (default 8). */
  concurrency?: number;
  /** Reuse a finished scan that started at most this long ago (default 0: never). */
  maxAgeMs?: number;
  now?: () => number;
}

/** Reads up to `max` bytes of a small file (3 thread-pool round trips: open, read, close). */
function readSmall(path: string, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    open(path, "r", (err, fd) => {
      if (err !== null) {
        reject(err);
        return;
      }
      const buf = Buffer.allocUnsafe(max);
      read(fd, buf, 0, max, null, (rerr, n) => {
        close(fd, () => {
          if (rerr !== null) reject(rerr);
          else resolve(buf.subarray(0, n));
        });
      });
    });
  });
}

/** Describes a toolstack process working on the domain (by id or name), or undefined. */
export function matchToolstackUser(procs: readonly ToolProcess[], domid: number, name: string | undefined): string | undefined {
  const ids = new Set([String(domid), ...(name === undefined || name === "" ? [] : [name])]);
  for (const p of procs) {
    if (!p.argv.some((a) => VERBS.has(a))) continue;
    if (p.argv.slice(1).some((a) => ids.has(a))) return `${p.tool} (pid ${p.pid}): ${p.argv.slice(1).join(" ").slice(0, 80)}`;
  }
  return undefined;
}

export class ToolstackScanner {
  readonly #procDir: string;
  readonly #concurrency: number;
  readonly #maxAgeMs: number;
  readonly #now: () => number;
  #inFlight: Promise<ToolProcess[]> | undefined;
  #last: { at: number; procs: ToolProcess[] } | undefined;
  /** Scans run (not shared), files read (comm + cmdline): measurements and tests. */
  scans = 0;
  commReads = 0;
  cmdlineReads = 0;

  constructor(opts: ScannerOptions = {}) {
    this.#procDir = opts.procDir ?? "/proc";
    this.#concurrency = Math.max(1, opts.concurrency ?? 8);
    this.#maxAgeMs = opts.maxAgeMs ?? 0;
    this.#now = opts.now ?? Date.now;
  }

  /** The toolstack processes running now (a scan in flight or a recent enough one is shared). */
  scan(): Promise<ToolProcess[]> {
    if (this.#inFlight !== undefined) return this.#inFlight;
    const last = this.#last;
    if (last !== undefined && this.#maxAgeMs > 0 && this.#now() - last.at <= this.#maxAgeMs) return Promise.resolve(last.procs);
    const at = this.#now();
    const p = this.#scan().then(
      (procs) => {
        this.#last = { at, procs };
        return procs;
      },
    );
    this.#inFlight = p;
    const clear = (): void => {
      if (this.#inFlight === p) this.#inFlight = undefined;
    };
    p.then(clear, clear);
    return p;
  }

  async user(domid: number, name: string | undefined): Promise<string | undefined> {
    return matchToolstackUser(await this.scan(), domid, name);
  }

  async #scan(): Promise<ToolProcess[]> {
    this.scans++;
    let pids: string[];
    try {
      pids = (await readdir(this.#procDir)).filter((p) => /^[0-9]+$/.test(p));
    } catch {
      return [];
    }
    const found: ToolProcess[] = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < pids.length) {
        const pid = pids[next++] ?? "";
        let comm: string;
        try {
          this.commReads++;
          comm = (await readSmall(`${this.#procDir}/${pid}/comm`, 64)).toString("latin1").replace(/\n$/, "");
        } catch {
          continue; // gone meanwhile
        }
        if (!COMMS.has(comm)) continue;
        let argv: string[];
        try {
          this.cmdlineReads++;
          argv = (await readSmall(`${this.#procDir}/${pid}/cmdline`, 4096)).toString("latin1").split("\0").filter((a) => a !== "");
        } catch {
          continue;
        }
        const tool = (argv[0] ?? "").split("/").pop() ?? "";
        if (TOOLS.has(tool)) found.push({ pid, tool, argv });
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.#concurrency, pids.length) }, () => worker()));
    return found.sort((a, b) => Number(a.pid) - Number(b.pid));
  }
}

/**
 * Describes a toolstack process working on the domain (by id or name), or undefined. One scan per
 * call; the daemon uses a shared ToolstackScanner instead.
 */
export async function toolstackUser(domid: number, name: string | undefined, procDir = "/proc"): Promise<string | undefined> {
  return new ToolstackScanner({ procDir }).user(domid, name);
}

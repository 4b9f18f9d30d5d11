// The lab: a real Xen 4.17 booted nested under QEMU (TCG), with dom0 reachable through an agent.
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { AgentClient, type ExecOptions, type ExecResult } from "./agent-client";
import { type LabArtefacts, buildArtefacts } from "./artefacts";
import { DEFAULT_STACK, type OtherStack, type Stack } from "./pins";
import { buildStackArtefacts, stackAddon } from "./stack-artefacts";
import { consoleLogs, findFatal, isTrampolinePanic, lastLines, readConsole } from "./console";
import { LabError } from "./errors";
import { assetsDir, cacheDir, repoDir } from "./paths";
import { type Progress, silent, timed } from "./progress";
import { type RuntimeArchiveOptions, buildRuntimeArchive, concatArchives } from "./runtime";
import { agentSocket, consoleLog, killQemuNow, livePid, startQemu, stopQemu } from "./qemu";

export type XenstoredFlavour = "oxenstored" | "cxenstored";

export interface LabOptions {
  /** Labs with different names run side by side. */
  name?: string;
  xenstored?: XenstoredFlavour;
  /** A different (e.g. patched) uncompressed Xen image. */
  hypervisor?: string;
  /** Default kernel for guests (e.g. a patched one); Debian's 6.1 kernel otherwise. */
  guestKernel?: string;
  bootTimeoutMs?: number;
  /** Keep QEMU running after this process exits (CLI `up`). */
  detached?: boolean;
  progress?: Progress;
  memoryMb?: number;
  /**
   * Which Debian release's Xen, dom0 toolstack, libraries and dom0 kernel: "bookworm" (default:
   * Xen 4.17, Linux 6.1) or "trixie" (Xen 4.20, Linux 6.12). See docs/lab.md, "Stacks".
   */
  stack?: Stack;
  /**
   * QEMU's CPU model (default FASTSUSPEND_QEMU_CPU, else Nehalem). PVH_CPU gives Xen HVM with
   * nested paging, so the lab runs PVH guests (TCG then runs single-threaded: qemuTcgThread()).
   */
  cpu?: string;
}

/** The SVM CPU model with nested paging under which the lab's Xen runs PVH guests (docs/lab.md). */
export const PVH_CPU = "Opteron_G3,+svm,+npt,-rdtscp";

export type GuestType = "pv" | "pvh";

export interface GuestOptions {
  name: string;
  /**
   * "pv" (default) or "pvh". PVH needs a lab whose CPU offers HVM with nested paging: boot it with
   * FASTSUSPEND_QEMU_CPU="Opteron_G3,+svm,+npt,-rdtscp" (see shared/lab-notes.md).
   */
  type?: GuestType;
  kernel?: string;
  memoryMb?: number;
  vcpus?: number;
  /** Extra kernel command line. */
  extra?: string;
  /** Wait until the guest's init prints its marker (default true). */
  waitReady?: boolean;
  timeoutMs?: number;
}

export interface Guest {
  name: string;
  type: GuestType;
  domid: number;
  kernel: string;
  createMs: number;
}

const XEN_CMDLINE =
  "console=com1 com1=115200,8n1 dom0_mem=768M,max:768M dom0_max_vcpus=2 noreboot bootscrub=0 smap=0 smep=0 cet=0 loglvl=warning guest_loglvl=warning";
const liveLabs = new Set<Lab>();

export const runDirFor = (name: string): string => join(cacheDir(), "runs", name);

export class Lab {
  private agent: AgentClient | undefined;

  private constructor(
    readonly name: string,
    readonly runDir: string,
    readonly artefacts: LabArtefacts,
    readonly xenstored: XenstoredFlavour,
    readonly guestKernel: string,
    readonly bootMs: number,
    readonly stack: Stack = DEFAULT_STACK,
  ) {}

  /** Builds what is missing, boots Xen and waits until dom0's toolstack answers. */
  static async up(opts: LabOptions = {}): Promise<Lab> {
    const progress = opts.progress ?? silent;
    const name = opts.name ?? "default";
    if (!/^[a-zA-Z0-9_.-]{1,40}$/.test(name)) throw new LabError(`bad lab name ${JSON.stringify(name)}`, "use letters, digits, '.', '_' or '-'");
    const stack = opts.stack ?? DEFAULT_STACK;
    const artefacts = stack === DEFAULT_STACK ? await buildArtefacts(progress) : await buildStackArtefacts(stack, progress);
    const runDir = runDirFor(name);
    const running = livePid(runDir);
    if (running !== undefined) throw new LabError(`lab "${name}" is already running (QEMU pid ${running})`, `use it, or stop it with: fastsuspend-lab down --name ${name}`);
    rmSync(runDir, { recursive: true, force: true });
    const shareDir = join(runDir, "share");
    mkdirSync(join(shareDir, "guests"), { recursive: true });
    copyFileSync(join(assetsDir, "agent.cjs"), join(shareDir, "agent.cjs"));
    copyFileSync(artefacts.guestInitrd, join(shareDir, "guest-initrd.gz"));
    await timed(progress, "pack the project's code for dom0", async () => {
      await buildRuntimeArchive(repoDir, join(runDir, "runtime.cpio.gz"), join(runDir, "runtime-staging"), stack === DEFAULT_STACK ? {} : await stackRuntimeOptions(stack, progress));
      rmSync(join(runDir, "runtime-staging"), { recursive: true, force: true });
      await concatArchives([artefacts.dom0Initrd, join(runDir, "runtime.cpio.gz")], join(runDir, "dom0-initrd.gz"));
    });
    const xenstored = opts.xenstored ?? "oxenstored";
    const xen = opts.hypervisor ?? artefacts.xen;
    if (!existsSync(xen)) throw new LabError(`hypervisor image ${xen} does not exist`, "build it first (hypervisor-patches/build.sh) or leave --hypervisor out");
    const t0 = Date.now();
    progress(`booting Xen under ${process.env.FASTSUSPEND_QEMU_BINARY ? `QEMU ${process.env.FASTSUSPEND_QEMU_BINARY}` : "QEMU"} (TCG), lab "${name}", ${xenstored}${stack === DEFAULT_STACK ? "" : `, stack ${stack}`}`);
    const child = await startQemu(
      {
        runDir, shareDir, xen, xenCmdline: XEN_CMDLINE,
        dom0Kernel: artefacts.dom0Kernel, dom0Cmdline: `console=hvc0 earlyprintk=xen quiet fastsuspend.xenstored=${xenstored}`,
        dom0Initrd: join(runDir, "dom0-initrd.gz"), memoryMb: opts.memoryMb ?? 2048, cpus: 2, ...(opts.cpu === undefined ? {} : { cpu: opts.cpu }),
      },
      opts.detached ?? false,
    );
    let qemuErr = "";
    child.stderr?.on("data", (b: Buffer) => (qemuErr += b.toString()));
    let exited: number | null | undefined;
    child.on("exit", (code) => (exited = code));
    const lab = new Lab(name, runDir, artefacts, xenstored, "", 0, stack);
    if (!opts.detached) {
      liveLabs.add(lab);
      installExitHandlers();
    }
    try {
      // A detached QEMU writes its stderr to the run dir's qemu.stderr (startQemu), not to our pipe.
      const said = (): string => (qemuErr.trim() !== "" ? qemuErr.trim() : lastLines(readConsole(join(runDir, "qemu.stderr")), 5));
      await lab.waitReady(opts.bootTimeoutMs ?? 180_000, () => (exited === undefined ? undefined : `QEMU exited (${exited}): ${said()}`));
    } catch (e) {
      await lab.down();
      throw e;
    }
    const guestKernel = opts.guestKernel ?? artefacts.guestKernel;
    const ready = new Lab(name, runDir, artefacts, xenstored, guestKernel, Date.now() - t0, stack);
    ready.agent = lab.agent;
    liveLabs.delete(lab);
    if (!opts.detached) liveLabs.add(ready);
    // bookworm's state file is as it was before stacks; another stack's says which it is.
    const state = stack === DEFAULT_STACK ? { name, xenstored, guestKernel, artefacts, bootMs: ready.bootMs } : { name, stack, xenstored, guestKernel, artefacts, bootMs: ready.bootMs };
    writeFileSync(join(runDir, "state.json"), JSON.stringify(state, null, 2));
    progress(`lab ready in ${(ready.bootMs / 1000).toFixed(1)}s`);
    return ready;
  }

  /** Attaches to a lab started elsewhere (e.g. by `fastsuspend-lab up`). */
  static async attach(name = "default"): Promise<Lab> {
    const runDir = runDirFor(name);
    if (livePid(runDir) === undefined) throw new LabError(`lab "${name}" is not running`, `start it with: fastsuspend-lab up --name ${name}`);
    const state = JSON.parse(readFileSync(join(runDir, "state.json"), "utf8")) as {
      xenstored: XenstoredFlavour; guestKernel: string; artefacts: LabArtefacts; bootMs: number; stack?: Stack;
    };
    const lab = new Lab(name, runDir, state.artefacts, state.xenstored, state.guestKernel, state.bootMs, state.stack ?? DEFAULT_STACK);
    lab.agent = await AgentClient.connect(agentSocket(runDir));
    return lab;
  }

  private async waitReady(timeoutMs: number, qemuGone: () => string | undefined): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const con = consoleLog(this.runDir);
    for (;;) {
      const text = readConsole(con);
      const fatal = findFatal(text);
      if (fatal) throw new LabError(`${fatal.what}: ${fatal.line}`, "read the console lines below; a patched hypervisor or kernel is the usual cause", lastLines(text));
      const gone = qemuGone();
      if (gone) throw new LabError(gone, "check the QEMU arguments and the artefacts in the cache", lastLines(text));
      if (Date.now() > deadline) throw new LabError(`boot timed out after ${timeoutMs} ms`, "the machine may be overloaded; raise bootTimeoutMs or check the console below", lastLines(text));
      if (text.includes("FASTSUSPEND-AGENT-READY") || text.includes("toolstack ready")) {
        try {
          this.agent ??= await AgentClient.connect(agentSocket(this.runDir));
          const pong = await this.agent.ping(3000);
          if (pong.code === 0) return;
        } catch {
          this.agent?.close();
          this.agent = undefined;
        }
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** Runs a command in dom0 (a string goes through sh -c). */
  async exec(cmd: string | string[], opts: ExecOptions = {}): Promise<ExecResult> {
    if (!this.agent) throw new LabError(`lab "${this.name}" is down`, "start it again with Lab.up()");
    const argv = typeof cmd === "string" ? ["sh", "-c", cmd] : cmd;
    return this.agent.exec(argv, { timeoutMs: 120_000, ...opts });
  }

  /** Like exec, but a non-zero exit or a timeout is an error with dom0's stderr. */
  async mustExec(cmd: string | string[], opts: ExecOptions = {}): Promise<string> {
    const r = await this.exec(cmd, opts);
    if (r.code !== 0 || r.timedOut) {
      const what = typeof cmd === "string" ? cmd : cmd.join(" ");
      throw new LabError(`dom0: \`${what}\` ${r.timedOut ? "timed out" : r.signal ? `killed by ${r.signal}` : `exited ${r.code}`}`, "see its output below", `${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`);
    }
    return r.stdout;
  }

  /** The console so far (Xen and dom0). */
  console(): string {
    return readConsole(consoleLog(this.runDir));
  }

  /**
   * What a failure needs once the lab is gone: Xen's log and the tail of every guest console in
   * dom0 (a guest that crashed is destroyed by its caller's cleanup, its log stays).
   */
  async consoleTails(lines = 150): Promise<string> {
    const r = await this.exec(`xl dmesg | tail -n 200; for f in /var/log/xen/console/guest-*.log; do [ -e "$f" ] || continue; echo "== $f"; tail -n ${lines} "$f"; done`, { timeoutMs: 60_000 });
    return r.stdout;
  }

  /** Makes a host file visible in dom0 under /lab, named by content so kernels never clash. */
  share(hostPath: string): string {
    const data = readFileSync(hostPath);
    const name = `${createHash("sha256").update(data).digest("hex").slice(0, 12)}-${hostPath.split("/").pop() ?? "file"}`;
    const dest = join(this.runDir, "share", name);
    if (!existsSync(dest)) writeFileSync(dest, data);
    return `/lab/${name}`;
  }

  /** Creates a guest (PV, 128 MB, 1 vCPU by default) and waits for its init. */
  async createGuest(g: GuestOptions): Promise<Guest> {
    if (!/^[a-zA-Z0-9_-]{1,32}$/.test(g.name)) throw new LabError(`bad guest name ${JSON.stringify(g.name)}`, "use letters, digits, '_' or '-'");
    const type = g.type ?? "pv";
    const kernel = g.kernel ?? this.guestKernel;
    const cfg = [
      `name = "${g.name}"`, `type = "${type}"`, `kernel = "${this.share(kernel)}"`, `ramdisk = "/lab/guest-initrd.gz"`,
      `memory = ${g.memoryMb ?? 128}`, `vcpus = ${g.vcpus ?? 1}`, `extra = "console=hvc0 ${g.extra ?? ""}"`,
      `on_crash = "preserve"`, `on_poweroff = "destroy"`, `on_reboot = "destroy"`,
    ].join("\n");
    const cfgPath = `/lab/guests/${g.name}.cfg`;
    writeFileSync(join(this.runDir, "share", "guests", `${g.name}.cfg`), cfg + "\n");
    const t0 = Date.now();
    // A PVH guest of this lab at times dies in early boot with a triple fault that names a Xen
    // address (QEMU's TCG emulation of SVM nested paging; shared/lab-notes.md), or with the double
    // fault of an interrupt taken on the entry trampoline stack while masked (docs/results.md,
    // "PVH panic": the stock kernel too, before any suspend): those are retried (three attempts in
    // all), said on stderr. Every other failure is the caller's.
    const faults = async (): Promise<number> => Number((await this.exec(`xl dmesg | grep -c "Triple fault"; true`)).stdout.trim()) || 0;
    const log = `/var/log/xen/console/guest-${g.name}.log`;
    for (let attempt = 1; ; attempt++) {
      const before = type === "pvh" ? await faults() : 0;
      // xenconsoled appends to a guest's log: an earlier guest of this name left its ready marker
      // there, which the wait below would take for this guest's (it did, in guest-data.lab).
      await this.exec(`rm -f ${consoleLogs(g.name)}`);
      const domid = await this.#xlCreate(g.name, cfgPath, g.timeoutMs);
      if (domid !== undefined && !(g.waitReady ?? true)) return { name: g.name, type, domid, kernel, createMs: Date.now() - t0 };
      // Exit 2 as soon as the domain is shut down, crashed (kept by on_crash) or gone (a triple
      // fault is a reboot to Xen).
      const wait = `i=0; until grep -q FASTSUSPEND-GUEST-READY ${log} 2>/dev/null; do case "$(xl list ${domid ?? -1} 2>/dev/null | awk 'NR==2{print $5}')" in ""|*s*|*c*) exit 2;; esac; i=$((i+1)); [ $i -gt 1200 ] && exit 1; sleep 0.1; done`;
      const r = domid === undefined ? { code: 2 } : await this.exec(wait, { timeoutMs: g.timeoutMs ?? 120_000 });
      if (r.code === 0 && domid !== undefined) return { name: g.name, type, domid, kernel, createMs: Date.now() - t0 };
      // A guest that just crashed: xenconsoled may not have written its last lines yet.
      if (r.code === 2 && type === "pvh") await new Promise((res) => setTimeout(res, 1000));
      const tail = await this.exec(`tail -n 200 ${log}`);
      const fault = type === "pvh" && (await faults()) > before;
      const trampolinePanic = type === "pvh" && isTrampolinePanic(tail.stdout);
      await this.exec(["xl", "destroy", g.name]);
      if ((fault || trampolinePanic) && attempt < 3) {
        const what = fault ? "a triple fault (TCG nested SVM; xl dmesg)" : "a double fault on the entry trampoline stack (an interrupt taken while masked; docs/results.md)";
        process.stderr.write(`lab: PVH guest ${g.name} died in boot with ${what}: creating it again (attempt ${attempt + 1} of 3)\n`);
        continue;
      }
      const hint = type === "pvh" ? "check the guest kernel (XEN_PVH) and that the lab's CPU offers HVM (`xl info` virt_caps)" : "check the guest kernel (it must be a Xen PV kernel)";
      const why = fault ? " (triple fault: see xl dmesg)" : trampolinePanic ? " (double fault on the entry trampoline stack, three times: docs/results.md)" : "";
      throw new LabError(`guest ${g.name} did not reach its init${why}`, hint, lastLines(tail.stdout, 30));
    }
  }

  /** xl create; the new domid, or undefined if the domain was already gone. Leaves no half-made domain behind. */
  async #xlCreate(name: string, cfgPath: string, timeoutMs: number | undefined): Promise<number | undefined> {
    try {
      await this.mustExec(["xl", "create", cfgPath], { timeoutMs: timeoutMs ?? 120_000 });
    } catch (e) {
      await this.exec(["xl", "destroy", name]);
      // xl's own message is often only "cannot (re-)build domain: -3"; what was left of Xen's
      // memory and which domains held it says more (session 12's bench: PV guests failed to
      // create after the long loops, exit 3 after ~12 s, and nothing said why).
      if (!(e instanceof LabError)) throw e;
      const state = await this.memoryState().catch((err: unknown) => `dom0 state unknown (${String(err)})`);
      throw new LabError(e.message.split("\n")[0] ?? "xl create failed", e.fix, `${e.detail ?? ""}\n${state}`);
    }
    const r = await this.exec(["xl", "domid", name]);
    return r.code === 0 ? Number(r.stdout.trim()) : undefined;
  }

  /**
   * One line: Xen's free memory, every domain with its memory and state (a dying domain shows as
   * "(null)"), dom0's available memory and what its root filesystem (RAM) holds.
   */
  async memoryState(): Promise<string> {
    const cmd = [
      `printf 'Xen free %s MB; domains:' "$(xl info free_memory)"`,
      `xl list | awk 'NR>1{printf " %s(%s, %s MB, %s)", $1, $2, $3, $5}'`,
      `printf '; dom0 available %s MB' "$(awk '/MemAvailable/{print int($2/1024)}' /proc/meminfo)"`,
      `printf '; dom0 rootfs %s MB used\\n' "$(du -smx / 2>/dev/null | awk '{print $1}')"`,
    ].join("; ");
    return (await this.mustExec(cmd, { timeoutMs: 30_000 })).trim();
  }

  async destroyGuest(name: string): Promise<void> {
    await this.mustExec(["xl", "destroy", name], { timeoutMs: 60_000 });
  }

  /** Stops QEMU by its PID; safe to call twice. */
  async down(): Promise<void> {
    this.agent?.close();
    this.agent = undefined;
    liveLabs.delete(this);
    await stopQemu(this.runDir);
  }

  /** Detaches from a background lab without stopping it. */
  disconnect(): void {
    this.agent?.close();
    this.agent = undefined;
    liveLabs.delete(this);
  }

  isRunning(): boolean {
    return livePid(this.runDir) !== undefined;
  }
}

/**
 * Another stack's dom0 has its own libraries (the host's must not go in), and the project's native
 * addon is the one built against that stack's libxen-dev, if it has been built (stackAddon).
 */
async function stackRuntimeOptions(stack: OtherStack, progress: Progress): Promise<RuntimeArchiveOptions> {
  const addon = await stackAddon(stack, progress);
  return { hostLibraries: false, replace: addon ? { "packages/xen/build/Release/xen.node": addon } : {} };
}

let handlersInstalled = false;

/** A lab this process started dies with it: on exit, Ctrl-C and SIGTERM. */
function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  const killAll = (): void => {
    for (const lab of liveLabs) killQemuNow(lab.runDir);
  };
  process.on("exit", killAll);
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(sig, () => {
      killAll();
      process.exit(128 + (sig === "SIGINT" ? 2 : sig === "SIGTERM" ? 15 : 1));
    });
  }
}

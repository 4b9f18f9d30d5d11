// One owner for each lab's QEMU: started with a pid file in the lab's own run directory and
// always stopped by that PID (checked against its command line, so a reused PID is never hit).
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { LabError } from "./errors";
import { run } from "./run";

export interface QemuConfig {
  runDir: string;
  shareDir: string;
  xen: string;
  xenCmdline: string;
  dom0Kernel: string;
  dom0Cmdline: string;
  dom0Initrd: string;
  memoryMb: number;
  cpus: number;
  /** The CPU model; qemuCpu() when absent. */
  cpu?: string;
}

export const consoleLog = (runDir: string): string => join(runDir, "console.log");
export const agentSocket = (runDir: string): string => join(runDir, "agent.sock");
export const pidFile = (runDir: string): string => join(runDir, "qemu.pid");

/**
 * QEMU: FASTSUSPEND_QEMU_BINARY (tools/build-qemu.sh's, with qemu-patches/ applied: issue 13's
 * interrupt delivered twice), else qemu-system-x86_64 on the PATH (Debian's).
 */
export async function qemuBinary(): Promise<string> {
  const chosen = process.env.FASTSUSPEND_QEMU_BINARY;
  if (chosen !== undefined && chosen !== "") {
    if (!existsSync(chosen)) throw new LabError(`FASTSUSPEND_QEMU_BINARY=${chosen} does not exist`, "build it with packages/lab/tools/build-qemu.sh, or unset it for Debian's qemu-system-x86_64");
    return chosen;
  }
  const r = await run(["sh", "-c", "command -v qemu-system-x86_64"]);
  const path = r.stdout.trim();
  if (r.code !== 0 || !path) throw new LabError("qemu-system-x86_64 not found", "apt-get install qemu-system-x86 (npm test and npm run bench install it themselves as root)");
  return path;
}

/**
 * The CPU model. Not TCG's "max": with it (even without the AVX family) multi-threaded Node.js in
 * dom0 segfaulted at random once a guest ran (V8 and libc), and timers read 0 us at times: TCG's
 * XSAVE-family emulation under Xen's context switches is the likely cause. Nehalem has no XSAVE,
 * so Xen falls back to FXSAVE; 3 x 2000-iteration native benchmarks with a guest running gave no
 * segfault. Override with FASTSUSPEND_QEMU_CPU.
 */
export function qemuCpu(): string {
  return process.env.FASTSUSPEND_QEMU_CPU ?? "Nehalem";
}

/**
 * TCG's threading: "multi" (one host thread per vCPU) or "single" (one thread runs every vCPU in
 * turn). The default is "single" for a CPU model with SVM (the one PVH guests need) and "multi"
 * otherwise: under multi-threaded TCG, PVH guests of a nested-SVM lab die with a triple fault
 * (2 of 2 guests within 64 `xl remus` checkpoints; issue 13's crashes after 86-212 of our cycles),
 * under single-threaded TCG none did (1231 `xl remus` checkpoints over 2 guests, 10000 cancelled
 * suspends on every path on one guest): an emulator race in QEMU's nested SVM (docs/results.md).
 * Override with FASTSUSPEND_QEMU_TCG_THREAD.
 */
export function qemuTcgThread(cpu: string = qemuCpu()): "multi" | "single" {
  const t = process.env.FASTSUSPEND_QEMU_TCG_THREAD ?? (/\+svm\b/.test(cpu) ? "single" : "multi");
  if (t !== "multi" && t !== "single") throw new LabError(`FASTSUSPEND_QEMU_TCG_THREAD=${JSON.stringify(t)}`, "set it to multi or single");
  return t;
}

export function qemuArgs(c: QemuConfig): string[] {
  return [
    "-name", `fastsuspend-lab,process=fastsuspend-lab`,
    // TCG: this machine's /dev/kvm is a software virtualiser that cannot run Xen (lab-notes).
    "-accel", `tcg,thread=${qemuTcgThread(c.cpu ?? qemuCpu())}`, "-cpu", c.cpu ?? qemuCpu(), "-smp", String(c.cpus), "-m", String(c.memoryMb),
    "-display", "none", "-monitor", "none", "-no-reboot", "-nodefaults",
    "-pidfile", pidFile(c.runDir),
    "-chardev", `file,id=con,path=${consoleLog(c.runDir)}`, "-serial", "chardev:con",
    "-kernel", c.xen, "-append", c.xenCmdline,
    // QEMU's multiboot loader: module "path args", modules separated by commas (',,' escapes).
    "-initrd", `${c.dom0Kernel} ${c.dom0Cmdline},${c.dom0Initrd}`,
    "-virtfs", `local,path=${c.shareDir},mount_tag=lab,security_model=none,id=lab`,
    "-device", "virtio-serial-pci",
    "-chardev", `socket,id=agent,path=${agentSocket(c.runDir)},server=on,wait=off`,
    "-device", "virtserialport,chardev=agent,name=fastsuspend.agent",
  ];
}

export async function startQemu(c: QemuConfig, detached: boolean): Promise<ChildProcess> {
  // A background QEMU must not write into a pipe whose reader has exited (SIGPIPE): use a file.
  const stderr = detached ? openSync(join(c.runDir, "qemu.stderr"), "a") : "pipe";
  const child = spawn(await qemuBinary(), qemuArgs(c), {
    stdio: ["ignore", "ignore", stderr],
    detached, // a background lab (CLI `up`) outlives the command that started it
  });
  if (detached) child.unref();
  return child;
}

/** The PID of this run dir's QEMU if it is still alive and really ours. */
export function livePid(runDir: string): number | undefined {
  let pid: number;
  try {
    // Read, not existsSync first: a lab stopped meanwhile removes the file in between.
    pid = Number(readFileSync(pidFile(runDir), "utf8").trim());
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  return isLabQemu(pid, runDir) ? pid : undefined;
}

/** pid is alive and is runDir's QEMU (not a lab whose name merely starts the same; a zombie's cmdline is empty). */
function isLabQemu(pid: number, runDir: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(`${runDir}/`);
  } catch {
    return false;
  }
}

/** Stops the QEMU of runDir: SIGTERM, then SIGKILL; resolves once it is gone. */
export async function stopQemu(runDir: string, graceMs = 3000): Promise<boolean> {
  const pid = livePid(runDir);
  if (pid === undefined) return false;
  // Watched by its pid, not by the pid file: QEMU removes that file as it starts to shut down, and
  // under load lived on after it for a while (lab.lab's "no QEMU after down" saw it in CI).
  const alive = (): boolean => isLabQemu(pid, runDir);
  killPid(pid, "SIGTERM");
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && alive()) await new Promise((r) => setTimeout(r, 100));
  if (alive()) killPid(pid, "SIGKILL");
  while (alive()) await new Promise((r) => setTimeout(r, 50));
  return true;
}

/** Synchronous, for process exit handlers. */
export function killQemuNow(runDir: string): void {
  const pid = livePid(runDir);
  if (pid !== undefined) killPid(pid, "SIGKILL");
}

function killPid(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}

// Reading the lab's consoles: the serial one (Xen's and dom0's messages) for readiness and for
// crashes, and the guests' logs in dom0.
import { existsSync, readFileSync } from "node:fs";

/** Lines that mean Xen or dom0 died, with what to say about it. */
const FATAL: { re: RegExp; what: string }[] = [
  { re: /\(XEN\) Panic on CPU/, what: "Xen panicked" },
  { re: /\(XEN\) .*(Fatal|FATAL)/, what: "Xen reported a fatal error" },
  { re: /Kernel panic - not syncing/, what: "dom0's kernel panicked" },
  { re: /\(XEN\) Domain 0 crashed/, what: "dom0 crashed" },
  { re: /FASTSUSPEND-INIT-FAILED: .*/, what: "dom0's init failed" },
];

export function readConsole(file: string): string {
  return existsSync(file) ? readFileSync(file, "latin1") : "";
}

export function lastLines(text: string, n = 30): string {
  return text
    .replace(/\x1b\[[0-9;?]*[a-zA-Z]/g, "")
    .split(/\r?\n/)
    .filter((l) => l.trim())
    .slice(-n)
    .map((l) => `  | ${l}`)
    .join("\n");
}

/** The first fatal condition in the console, with the line that shows it. */
export function findFatal(text: string): { what: string; line: string } | undefined {
  for (const f of FATAL) {
    const m = f.re.exec(text);
    if (m) {
      const start = text.lastIndexOf("\n", m.index) + 1;
      const end = text.indexOf("\n", m.index);
      return { what: f.what, line: text.slice(start, end < 0 ? undefined : end).trim() };
    }
  }
  return undefined;
}

/**
 * A guest console's tail shows the PVH guest panic of this lab (docs/results.md): a double fault
 * whose trace is on the entry trampoline stack, the kernel having taken an interrupt between
 * `swapgs` and `iretq` with the user's GS base. It struck the stock kernel too.
 */
export function isTrampolinePanic(tail: string): boolean {
  return /double fault|Kernel panic/.test(tail) && /<\/?ENTRY_TRAMPOLINE>/.test(tail);
}

/**
 * The console logs of the guest named `name`, for a shell command line: its own, and the one its
 * console went to after a live migration (xenconsoled names a log when the domain appears, and xl
 * migrate-receive creates the domain as NAME--incoming).
 */
export function consoleLogs(name: string): string {
  return `/var/log/xen/console/guest-${name}.log /var/log/xen/console/guest-${name}--incoming.log`;
}

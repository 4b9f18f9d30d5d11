// Asking a lab guest's probe for its results (assets/guest-xsreq.h): write a fresh token to the
// probe's request node in the guest's xenstore home, then wait in dom0 for the block the probe
// prints, tagged with that token, on its console (xenconsoled logs it to
// /var/log/xen/console/guest-NAME.log). Off the critical path: one xenstore write, then the log
// is polled in dom0.
import { randomBytes } from "node:crypto";
import { consoleLogs } from "./console";
import { LabError } from "./errors";
import type { Lab } from "./lab";

export interface GuestProbeRequest<T> {
  /** The probe's node under /local/domain/DOMID, e.g. "data/phases/request". */
  node: string;
  /** Its console lines' prefix, e.g. "PHASES" (blocks are TAG-BEGIN req=TOKEN .. TAG-END req=TOKEN). */
  tag: string;
  /** How long to wait for the block (the console is slow under TCG). */
  timeoutMs: number;
  /** What the caller should check when no answer comes. */
  hint: string;
  /** Reads the answer (the block, its token); undefined if the block cannot be read. */
  parse: (block: string, req: string) => T | undefined;
}

/** A probe's console line "TAG-WORD k=v k=v ..." as a map (the first word is skipped). */
export function probeFields(line: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const w of line.trim().split(/\s+/).slice(1)) {
    const i = w.indexOf("=");
    if (i > 0) m.set(w.slice(0, i), w.slice(i + 1));
  }
  return m;
}

/** The probe's answer, parsed. `guest` is a domain name or id. */
export async function askGuestProbe<T>(lab: Lab, guest: string | number, r: GuestProbeRequest<T>): Promise<T> {
  const probe = r.tag.toLowerCase();
  const domid = typeof guest === "number" ? guest : Number((await lab.mustExec(["xl", "domid", guest])).trim());
  const name = typeof guest === "string" ? guest : (await lab.mustExec(["xl", "domname", String(guest)])).trim();
  if (!Number.isInteger(domid) || !/^[a-zA-Z0-9_-]{1,64}$/.test(name)) throw new LabError(`${probe}: bad guest ${JSON.stringify(guest)}`, "pass a running guest's name or domid");
  const req = `r${Date.now().toString(36)}${randomBytes(4).toString("hex")}`;
  // A migrated guest's console goes to guest-NAME--incoming.log: xenconsoled names the log when
  // the domain appears, and xl migrate-receive creates it as NAME--incoming (renamed at the end).
  const log = consoleLogs(name);
  const script = [
    `xenstore-write /local/domain/${domid}/${r.node} ${req} || exit 4`,
    `end=$(($(date +%s) + ${Math.ceil(r.timeoutMs / 1000)}))`,
    // Through cat: busybox grep and sed fail on a missing file even when another one matches.
    `until cat ${log} 2>/dev/null | grep -q '${r.tag}-END req=${req} '; do [ $(date +%s) -ge $end ] && exit 3; sleep 0.1; done`,
    `cat ${log} 2>/dev/null | sed -n '/${r.tag}-BEGIN req=${req} /,/${r.tag}-END req=${req} /p'`,
  ].join("\n");
  const res = await lab.exec(script, { timeoutMs: r.timeoutMs + 30_000 });
  if (res.code !== 0 || res.timedOut) {
    const tail = await lab.exec(`cat ${log} 2>/dev/null | tail -n 20`);
    const why = res.code === 4 ? "could not write its request node" : "no answer in its console log";
    throw new LabError(`${probe} probe of ${name} (domid ${domid}): ${why} within ${r.timeoutMs} ms`, r.hint, `${res.stderr}\n${tail.stdout}`);
  }
  const answer = r.parse(res.stdout, req);
  if (answer === undefined) throw new LabError(`${probe} probe of ${name}: its block for ${req} could not be parsed`, "see the console output below", res.stdout.slice(-3000));
  return answer;
}

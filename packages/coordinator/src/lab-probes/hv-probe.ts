// Lab probe (dom0 only, run by test/hv-notify.lab.test.ts): drives XEN_DOMCTL_suspend_notify with
// the real binding and prints JSON, so the test can assert on what the hypervisor really did.
//
//   node hv-probe.js errors DOM          errno of each malformed call
//   node hv-probe.js bound DOM           8 REGISTERs, the 9th, QUERY, UNREGISTER + REGISTER again
//   node hv-probe.js query DOM           the registrations on DOM
//   node hv-probe.js aba DOM             REGISTER, bind, unbind (Xen drops it, frees the port),
//                                        REGISTER again (same port), then the first one's late
//                                        UNREGISTER: it must not remove the second registration
//   node hv-probe.js unbound DOM N       N REGISTERs never bound, then exit (a process killed
//                                        between REGISTER and bind, N times)
//   node hv-probe.js try DOM             one REGISTER; QUERY; UNREGISTER
//   node hv-probe.js settarget DOM TGT   XEN_DOMCTL_set_target: DOM becomes TGT's device model
//   node hv-probe.js listen DOM MASK SECONDS [UNREGISTER_AFTER_MS]
//        REGISTER, bind, drain the bind event, then print one JSON line per event (with the
//        domain's state), "ready" once armed; UNREGISTER after UNREGISTER_AFTER_MS (and keep
//        listening) or at the end. SIGUSR1: UNREGISTER now; SIGTERM: stop now (both keep the
//        JSON summary). Never blocks without a deadline.
import { isXenError, openXen, type XenBinding } from "@fastsuspend/xen";

import { XEN_DOMCTL_suspend_notify, HV_NOTIFY_EV, hvNotifyQuery, hvNotifyRegister, hvNotifyUnregister, type HvNotifyHandle } from "../hv-notify";

const XEN_DOMCTL_set_target = 46;

const out = (o: unknown): void => {
  process.stdout.write(`${JSON.stringify(o)}\n`);
};

function errnoOf(f: () => unknown): string {
  try {
    f();
    return "OK";
  } catch (err) {
    if (isXenError(err)) return err.code;
    throw err;
  }
}

/** A payload with explicit fields (incl. pad, op and cookie), for the malformed cases. */
function raw(op: number, mask = 0, flags = 0, port = 0, pad = 0, cookie = 0n): Buffer {
  const u = Buffer.alloc(128);
  u.writeUInt32LE(op, 0);
  u.writeUInt32LE(mask, 4);
  u.writeUInt32LE(flags, 8);
  u.writeUInt32LE(port, 12);
  u.writeUInt32LE(pad, 20);
  u.writeBigUInt64LE(cookie, 120);
  return u;
}

function errors(xen: XenBinding, dom: number): void {
  const call = (d: number, u: Buffer) => () => xen.domctl(XEN_DOMCTL_suspend_notify, d, u);
  const r: Record<string, string> = {
    noSuchDomain: errnoOf(call(0x7000, raw(1, 1))),
    self: errnoOf(call(0, raw(1, 1))),
    emptyMask: errnoOf(call(dom, raw(1, 0))),
    unknownMaskBit: errnoOf(call(dom, raw(1, 0x10))),
    unknownFlag: errnoOf(call(dom, raw(1, 1, 0x2))),
    padSet: errnoOf(call(dom, raw(3, 0, 0, 0, 1))),
    op0: errnoOf(call(dom, raw(0))),
    op4: errnoOf(call(dom, raw(4))),
    unregisterUnknownPort: errnoOf(call(dom, raw(2, 0, 0, 4000, 0, 1n))),
    unregisterPort0: errnoOf(call(dom, raw(2, 0, 0, 0, 0, 1n))),
    unregisterCookie0: errnoOf(call(dom, raw(2, 0, 0, 4000, 0, 0n))),
  };
  r.queryAfter = String(hvNotifyQuery(xen, dom).length);
  out(r);
}

function bound(xen: XenBinding, dom: number): void {
  const ports: HvNotifyHandle[] = [];
  const res: Record<string, unknown> = {};
  try {
    for (let i = 0; i < 8; i++) ports.push(hvNotifyRegister(xen, dom, HV_NOTIFY_EV.suspend | (i % 2 === 0 ? 0 : HV_NOTIFY_EV.dying)));
    res.registered = ports.length;
    res.ninth = errnoOf(() => ports.push(hvNotifyRegister(xen, dom, HV_NOTIFY_EV.suspend)));
    res.query = hvNotifyQuery(xen, dom);
    const first = ports.shift();
    if (first !== undefined) hvNotifyUnregister(xen, dom, first.port, first.cookie);
    res.afterUnregister = hvNotifyQuery(xen, dom).length;
    res.reRegister = errnoOf(() => ports.push(hvNotifyRegister(xen, dom, HV_NOTIFY_EV.suspend)));
    res.afterReRegister = hvNotifyQuery(xen, dom).length;
  } finally {
    const problems: string[] = [];
    for (const p of ports) {
      const e = errnoOf(() => { hvNotifyUnregister(xen, dom, p.port, p.cookie); });
      if (e !== "OK") problems.push(`${p.port}: ${e}`);
    }
    res.cleanupProblems = problems;
    res.final = hvNotifyQuery(xen, dom).length;
    out(res);
  }
}

async function listen(xen: XenBinding, dom: number, mask: number, seconds: number, unregisterAfterMs: number | undefined): Promise<void> {
  const t0 = Date.now();
  const { port, cookie } = hvNotifyRegister(xen, dom, mask);
  const h = xen.openEvtchn();
  const local = h.bindInterdomain(0, port);
  let bindEvent = false;
  try {
    // Xen sets the bind event synchronously; the generous timeout only covers a loaded machine,
    // where a late bind event would otherwise be counted as a notification.
    await h.wait(local, { timeoutMs: 10_000 });
    bindEvent = true;
  } catch (err) {
    if (!isXenError(err, "ETIMEDOUT")) throw err;
  }
  h.unmask(local);
  out({ ready: true, port, cookie: String(cookie), local, bindEvent, pid: process.pid });
  let unregistered: string | undefined;
  const doUnregister = (): string => errnoOf(() => { hvNotifyUnregister(xen, dom, port, cookie); });
  let events = 0;
  let eventsAfterUnregister = 0;
  let deadline = t0 + seconds * 1000;
  const signals = { unregister: false };
  process.on("SIGTERM", () => { deadline = 0; });
  process.on("SIGUSR1", () => { signals.unregister = true; });
  while (Date.now() < deadline) {
    const due = signals.unregister || (unregisterAfterMs !== undefined && Date.now() - t0 >= unregisterAfterMs);
    if (due && unregistered === undefined) {
      unregistered = doUnregister();
      out({ unregistered, t: Date.now() - t0 });
    }
    const slice = Math.max(1, Math.min(deadline - Date.now(), 100));
    try {
      await h.wait(local, { timeoutMs: slice });
    } catch (err) {
      if (isXenError(err, "ETIMEDOUT")) continue;
      throw err;
    }
    events++;
    if (unregistered !== undefined) eventsAfterUnregister++;
    let state: Record<string, unknown>;
    try {
      const i = xen.getInfo(dom);
      state = { shutdown: i.shutdown, reason: i.shutdownReasonName, dying: i.dying };
    } catch (err) {
      state = { error: isXenError(err) ? err.code : String(err) };
    }
    out({ event: events, t: Date.now() - t0, ...state });
    h.unmask(local);
  }
  if (unregistered === undefined) unregistered = doUnregister();
  h.close();
  out({ done: true, events, eventsAfterUnregister, unregistered });
}

/**
 * The ABA case of UNREGISTER by port: our first registration ends when we close its binding (Xen
 * frees its port), the next REGISTER is handed the same port number, and the first one's late
 * UNREGISTER must not remove the second.
 */
function aba(xen: XenBinding, dom: number): void {
  const res: Record<string, unknown> = {};
  const first = hvNotifyRegister(xen, dom, HV_NOTIFY_EV.suspend);
  const h = xen.openEvtchn();
  const local = h.bindInterdomain(0, first.port);
  h.unbind(local);
  h.close();
  res.afterUnbind = hvNotifyQuery(xen, dom).length;
  const second = hvNotifyRegister(xen, dom, HV_NOTIFY_EV.suspend);
  res.firstPort = first.port;
  res.secondPort = second.port;
  res.reused = first.port === second.port;
  res.cookiesDiffer = first.cookie !== second.cookie;
  res.staleUnregister = errnoOf(() => { hvNotifyUnregister(xen, dom, first.port, first.cookie); });
  res.queryAfter = hvNotifyQuery(xen, dom).map((r) => r.port);
  res.ownUnregister = errnoOf(() => { hvNotifyUnregister(xen, dom, second.port, second.cookie); });
  res.final = hvNotifyQuery(xen, dom).length;
  out(res);
}

/** N registrations that are never bound, left behind as by processes killed before their bind. */
function unbound(xen: XenBinding, dom: number, n: number): void {
  const ports: number[] = [];
  let stop = "OK";
  for (let i = 0; i < n && stop === "OK"; i++) stop = errnoOf(() => ports.push(hvNotifyRegister(xen, dom, HV_NOTIFY_EV.suspend).port));
  out({ registered: ports.length, ports, stop });
}

/** One REGISTER: its errno, and if it worked the count while registered; then UNREGISTER. */
function tryRegister(xen: XenBinding, dom: number): void {
  let reg: HvNotifyHandle | undefined;
  const register = errnoOf(() => { reg = hvNotifyRegister(xen, dom, HV_NOTIFY_EV.suspend); });
  const nrWhileRegistered = hvNotifyQuery(xen, dom).length;
  const r = reg;
  const unregister = r === undefined ? "-" : errnoOf(() => { hvNotifyUnregister(xen, dom, r.port, r.cookie); });
  out({ register, nrWhileRegistered, unregister, nrAfter: hvNotifyQuery(xen, dom).length });
}

/** XEN_DOMCTL_set_target: `dom` becomes `target`'s device model (4.17 wants an HVM/PVH target). */
function setTarget(xen: XenBinding, dom: number, target: number): void {
  const u = Buffer.alloc(8);
  u.writeUInt16LE(target, 0);
  out({ settarget: errnoOf(() => xen.domctl(XEN_DOMCTL_set_target, dom, u)) });
}

async function main(): Promise<void> {
  const [cmd, domS, ...rest] = process.argv.slice(2);
  const dom = Number(domS);
  if (cmd === undefined || !Number.isInteger(dom)) throw new Error("usage: hv-probe errors|bound|query|listen|aba|unbound|try|settarget DOM ...");
  const xen = openXen();
  try {
    if (cmd === "errors") errors(xen, dom);
    else if (cmd === "bound") bound(xen, dom);
    else if (cmd === "query") out({ regs: hvNotifyQuery(xen, dom) });
    else if (cmd === "aba") aba(xen, dom);
    else if (cmd === "unbound") unbound(xen, dom, Number(rest[0] ?? "8"));
    else if (cmd === "try") tryRegister(xen, dom);
    else if (cmd === "settarget") setTarget(xen, dom, Number(rest[0]));
    else if (cmd === "listen") {
      const [maskS, secS, unregS] = rest;
      await listen(xen, dom, Number(maskS ?? "9"), Number(secS ?? "10"), unregS === undefined ? undefined : Number(unregS));
    } else throw new Error(`unknown probe ${cmd}`);
  } finally {
    xen.close();
  }
}

main().catch((err: unknown) => {
  out({ fatal: isXenError(err) ? err.code : err instanceof Error ? err.message : String(err) });
  process.exit(1);
});

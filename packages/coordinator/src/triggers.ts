// How the suspend request reaches the guest.
import { isXenError } from "@fastsuspend/xen";

import { readGuestChannel } from "./detect";
import { CoordinatorError } from "./errors";
import { swallowBindEvent, type NotifierContext } from "./notifiers";
import type { Trigger } from "./paths";
import { controlShutdownKey } from "./xs";

export interface CancelOutcome {
  /** The request was still pending and we took it back. */
  withdrawn: boolean;
  /** The guest had already taken it: it may be about to suspend. */
  acked: boolean;
  /** The request cannot be taken back (an event, a hypercall). */
  unrevocable: boolean;
}

export interface TriggerImpl {
  readonly kind: Trigger;
  open(): Promise<void>;
  /** Right before fire(): take what it needs (with hold "operation", the guest's channel binding). */
  arm(): Promise<void>;
  fire(): Promise<void>;
  /**
   * Once the suspend is over (confirmed, or given up): with hold "operation", let go of what arm()
   * took, so that libxl can bind the guest's channel between our operations. Never throws.
   */
  release(): Promise<string[]>;

  /** After a timeout: withdraw the request if it can be. */
  cancel(): Promise<CancelOutcome>;
  close(): Promise<string[]>;
}

/**
 * The session's context. With hold "operation" the guest's suspend channel is bound only from arm()
 * to release(): libxl's xc_suspend_evtchn_init_* must find the guest's port unbound between our
 * operations, or `xl save` fails.
 */
export type TriggerContext = NotifierContext;

/**
 * Notify the guest's own suspend channel (device/suspend/event-channel). The port is read and
 * verified once in open(); the binding lives for the session or for one operation (ctx.hold).
 */
export class EvtchnTrigger implements TriggerImpl {
  readonly kind = "evtchn" as const;
  readonly #ctx: TriggerContext;
  /** The guest's advertised port (validated in open()). */
  #guestPort = -1;
  #local = -1;

  constructor(ctx: TriggerContext) {
    this.#ctx = ctx;
  }

  async open(): Promise<void> {
    const { xen, xs, domid } = this.#ctx;
    // Read and parse again: the key is guest-written and may have changed since detect().
    const ch = await readGuestChannel(xen, xs, domid, { lockHeld: true });
    if (ch.status !== "ok" || ch.port === undefined) {
      throw new CoordinatorError("ENOPATH", domid, `domain ${domid} has no usable suspend event channel (${ch.status}${ch.detail !== undefined ? `: ${ch.detail}` : ""})`);
    }
    this.#guestPort = ch.port;
    if (this.#ctx.hold === "session") await this.#bind();
  }

  async #bind(): Promise<void> {
    const { domid } = this.#ctx;
    const h = this.#ctx.evtchn();
    try {
      this.#local = h.bindInterdomain(domid, this.#guestPort);
    } catch (err) {
      // EINVAL: the port is no longer offered to dom0 (the guest withdrew or renewed its channel,
      // kexec'd, or another process bound it). The session sets the path up again from the key.
      if (isXenError(err, "EINVAL")) {
        throw new CoordinatorError("ENOPATH", domid, `domain ${domid}'s suspend event channel (port ${this.#guestPort}) can no longer be bound from dom0: withdrawn or renewed by the guest?`, { cause: err });
      }
      throw err;
    }
    await swallowBindEvent(h, this.#local);
  }

  async arm(): Promise<void> {
    if (this.#local < 0) await this.#bind();
  }

  fire(): Promise<void> {
    const h = this.#ctx.evtchn();
    // Anything the guest sent back on its channel means nothing to us: drop it, keep it unmasked.
    if (h.clearLatched(this.#local)) h.unmask(this.#local);
    h.notify(this.#local);
    return Promise.resolve();
  }

  cancel(): Promise<CancelOutcome> {
    return Promise.resolve({ withdrawn: false, acked: false, unrevocable: true });
  }

  release(): Promise<string[]> {
    return Promise.resolve(this.#ctx.hold === "operation" ? this.#unbind() : []);
  }

  close(): Promise<string[]> {
    return Promise.resolve(this.#unbind());
  }

  #unbind(): string[] {
    if (this.#local < 0) return [];
    const local = this.#local;
    this.#local = -1;
    try {
      this.#ctx.evtchn().unbind(local);
      return [];
    } catch (err) {
      return [`unbind guest channel port ${local}: ${err instanceof Error ? err.message : String(err)}`];
    }
  }
}

/** control/shutdown = "suspend"; the guest acks by clearing it (libxl's PV path). */
export class XenstoreTrigger implements TriggerImpl {
  readonly kind = "xenstore" as const;
  readonly #ctx: TriggerContext;

  constructor(ctx: TriggerContext) {
    this.#ctx = ctx;
  }

  open(): Promise<void> {
    return Promise.resolve();
  }

  fire(): Promise<void> {
    return this.#ctx.xs.write(controlShutdownKey(this.#ctx.domid), "suspend");
  }

  /** Like libxl: re-read in a transaction and clear only if the guest has not taken it meanwhile. */
  async cancel(): Promise<CancelOutcome> {
    const key = controlShutdownKey(this.#ctx.domid);
    const withdrawn = await this.#ctx.xs.transaction(async (tx) => {
      if ((await tx.tryReadString(key)) !== "suspend") return false;
      await tx.write(key, "");
      return true;
    });
    return { withdrawn, acked: !withdrawn, unrevocable: false };
  }

  arm(): Promise<void> {
    return Promise.resolve();
  }

  release(): Promise<string[]> {
    return Promise.resolve([]);
  }

  close(): Promise<string[]> {
    return Promise.resolve([]);
  }
}

/** xc_domain_shutdown(SHUTDOWN_suspend): HVM guests without PV drivers only. */
export class ShutdownTrigger implements TriggerImpl {
  readonly kind = "shutdown" as const;
  readonly #ctx: TriggerContext;

  constructor(ctx: TriggerContext) {
    this.#ctx = ctx;
  }

  open(): Promise<void> {
    return Promise.resolve();
  }

  fire(): Promise<void> {
    this.#ctx.xen.shutdown(this.#ctx.domid, "suspend");
    return Promise.resolve();
  }

  cancel(): Promise<CancelOutcome> {
    return Promise.resolve({ withdrawn: false, acked: true, unrevocable: true });
  }

  arm(): Promise<void> {
    return Promise.resolve();
  }

  release(): Promise<string[]> {
    return Promise.resolve([]);
  }

  close(): Promise<string[]> {
    return Promise.resolve([]);
  }
}

export function makeTrigger(kind: Trigger, ctx: TriggerContext): TriggerImpl {
  switch (kind) {
    case "evtchn":
      return new EvtchnTrigger(ctx);
    case "xenstore":
      return new XenstoreTrigger(ctx);
    case "shutdown":
      return new ShutdownTrigger(ctx);
  }
}

// How the suspend request reaches the guest.
import type { EvtchnHandle, XenBinding } from "@fastsuspend/xen";

import { readGuestChannel } from "./detect";
import { CoordinatorError } from "./errors";
import { swallowBindEvent } from "./notifiers";
import type { Trigger } from "./paths";
import { controlShutdownKey, type XenstoreLike } from "./xs";

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
  fire(): Promise<void>;
  /** After a timeout: withdraw the request if it can be. */
  cancel(): Promise<CancelOutcome>;
  close(): Promise<string[]>;
}

export interface TriggerContext {
  xen: XenBinding;
  xs: XenstoreLike;
  domid: number;
  evtchn: () => EvtchnHandle;
}

/** Notify the guest's own suspend channel (device/suspend/event-channel), bound once. */
export class EvtchnTrigger implements TriggerImpl {
  readonly kind = "evtchn" as const;
  readonly #ctx: TriggerContext;
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
    const h = this.#ctx.evtchn();
    this.#local = h.bindInterdomain(domid, ch.port);
    await swallowBindEvent(h, this.#local);
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

  close(): Promise<string[]> {
    if (this.#local < 0) return Promise.resolve([]);
    const local = this.#local;
    this.#local = -1;
    try {
      this.#ctx.evtchn().unbind(local);
      return Promise.resolve([]);
    } catch (err) {
      return Promise.resolve([`unbind guest channel port ${local}: ${err instanceof Error ? err.message : String(err)}`]);
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

// EvtchnPoller: the EventEmitter + promise API over a raw handle (the native EvtchnHandle, or the
// fake's). The raw handle is a constructor parameter, so tests can pass any implementation.
import { EventEmitter } from "node:events";

import { xenError } from "./errors";
import type { EvtchnHandle, WaitOptions } from "./interface";

/** What the addon's EvtchnHandle class exposes (and the fake mirrors). */
export interface RawEvtchn {
  fd(): number;
  bindInterdomain(remoteDomid: number, remotePort: number): number;
  bindUnboundPort(remoteDomid: number): number;
  bindVirq(virq: number): number;
  notify(port: number): void;
  unbind(port: number): void;
  unmask(port: number): void;
  pending(): number;
  /** cb(null, port) per delivered port; cb(err, -1) once on a poll failure (polling stops). */
  startPolling(cb: (err: Error | null, port: number) => void): void;
  stopPolling(): void;
  ref(): void;
  unref(): void;
  boundPorts(): number[];
  isClosed(): boolean;
  close(): void;
}

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
}

export class EvtchnPoller extends EventEmitter implements EvtchnHandle {
  readonly #raw: RawEvtchn;
  readonly #latched = new Set<number>();
  readonly #waiters = new Map<number, Set<Waiter>>();

  constructor(raw: RawEvtchn, poll = true) {
    super();
    this.#raw = raw;
    if (poll) {
      raw.startPolling((err, port) => {
        this.#onEvent(err, port);
      });
    }
  }

  get closed(): boolean {
    return this.#raw.isClosed();
  }

  fd(): number {
    return this.#raw.fd();
  }
  bindInterdomain(remoteDomid: number, remotePort: number): number {
    return this.#raw.bindInterdomain(remoteDomid, remotePort);
  }
  bindUnboundPort(remoteDomid: number): number {
    return this.#raw.bindUnboundPort(remoteDomid);
  }
  bindVirq(virq: number): number {
    return this.#raw.bindVirq(virq);
  }
  notify(port: number): void {
    this.#raw.notify(port);
  }
  unbind(port: number): void {
    this.#raw.unbind(port);
    this.#latched.delete(port);
    this.#rejectWaiters(port, xenError("evtchn wait", `port=${port}`, "ECANCELED", "port unbound"));
  }
  unmask(port: number): void {
    this.#raw.unmask(port);
  }
  pending(): number {
    return this.#raw.pending();
  }
  boundPorts(): number[] {
    return this.#raw.boundPorts();
  }
  ref(): void {
    this.#raw.ref();
  }
  unref(): void {
    this.#raw.unref();
  }

  clearLatched(port: number): boolean {
    return this.#latched.delete(port);
  }

  wait(port: number, opts: WaitOptions = {}): Promise<void> {
    if (this.closed) return Promise.reject(xenError("evtchn wait", `port=${port}`, "EBADF", "handle closed"));
    if (this.#latched.delete(port)) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const { signal, timeoutMs } = opts;
      const cleanup = (): void => {
        if (timer !== undefined) clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        const set = this.#waiters.get(port);
        set?.delete(waiter);
        if (set?.size === 0) this.#waiters.delete(port);
      };
      const waiter: Waiter = {
        resolve: () => {
          cleanup();
          resolve();
        },
        reject: (err) => {
          cleanup();
          reject(err);
        },
      };
      const onAbort = (): void => {
        waiter.reject(signal?.reason instanceof Error ? signal.reason : new Error("aborted"));
      };
      if (signal?.aborted === true) {
        onAbort();
        return;
      }
      signal?.addEventListener("abort", onAbort, { once: true });
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          waiter.reject(xenError("evtchn wait", `port=${port}, timeout=${timeoutMs}ms`, "ETIMEDOUT"));
        }, timeoutMs);
      }
      let set = this.#waiters.get(port);
      if (set === undefined) {
        set = new Set();
        this.#waiters.set(port, set);
      }
      set.add(waiter);
    });
  }

  close(): void {
    if (this.closed) return;
    this.#raw.close();
    this.#latched.clear();
    const err = xenError("evtchn wait", "", "ECANCELED", "handle closed");
    for (const port of [...this.#waiters.keys()]) this.#rejectWaiters(port, err);
  }

  #rejectWaiters(port: number, err: Error): void {
    const set = this.#waiters.get(port);
    if (set === undefined) return;
    for (const w of [...set]) w.reject(err);
  }

  #onEvent(err: Error | null, port: number): void {
    if (err !== null) {
      const hadWaiters = this.#waiters.size > 0;
      for (const p of [...this.#waiters.keys()]) this.#rejectWaiters(p, err);
      if (this.listenerCount("error") > 0 || !hadWaiters) this.emit("error", err);
      return;
    }
    const set = this.#waiters.get(port);
    if (set !== undefined && set.size > 0) {
      for (const w of [...set]) w.resolve();
    } else {
      this.#latched.add(port);
    }
    this.emit("event", port);
  }
}

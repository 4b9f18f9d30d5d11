/** One watch firing: `path` is the node that changed (a child of the watched path, or the path itself). */
export interface WatchEvent {
  path: string;
  token: string;
}

/**
 * What to do with the event xenstored sends right after registering a watch
 * (docs/misc/xenstore.txt: "When a watch is first set up it is triggered once
 * straight away, with <path> equal to <wpath>"):
 * - "deliver": hand it to the consumer, which then reads the current state
 *   first; the usual and race-free pattern (state -> wait -> re-read).
 * - "swallow": drop the first event for this token if its path equals the
 *   watched path. Only that one event is examined; any other spurious fire is
 *   delivered, as the protocol allows spurious fires anyway.
 * After a reconnect, watches are re-registered and the new initial fire is
 * always delivered: changes may have been missed while disconnected.
 */
export type InitialFirePolicy = "deliver" | "swallow";

export interface WatchOptions {
  /** Token sent to xenstored; generated if omitted. Must be unique on this client. */
  token?: string;
  /** Aborting ends the iteration (pending next() resolves done) and unwatches. */
  signal?: AbortSignal;
  /** Overrides the client's default ("deliver"). */
  initialFire?: InitialFirePolicy;
}

/**
 * A registered watch, consumed as an async iterator:
 *   for await (const ev of await client.watch(path)) { ... }
 * Leaving the loop (break/return/throw) calls return(), which unwatches.
 * Events are queued until consumed, so none is lost between next() calls.
 */
export class XenstoreWatch implements AsyncIterableIterator<WatchEvent> {
  private readonly queue: WatchEvent[] = [];
  private readonly waiters: {
    resolve: (r: IteratorResult<WatchEvent>) => void;
    reject: (e: Error) => void;
  }[] = [];
  private finished = false;
  private failure: Error | undefined;
  private swallowPending: boolean;
  private unwatchPromise: Promise<void> | undefined;

  /** @internal constructed by XenstoreClient.watch */
  constructor(
    readonly path: string,
    readonly token: string,
    initialFire: InitialFirePolicy,
    private readonly unregister: () => Promise<void>,
  ) {
    this.swallowPending = initialFire === "swallow";
  }

  /** @internal the client routes events for this token here. */
  deliver(event: WatchEvent): void {
    if (this.finished) return;
    if (this.swallowPending) {
      this.swallowPending = false;
      if (event.path === this.path) return;
    }
    const waiter = this.waiters.shift();
    if (waiter !== undefined) waiter.resolve({ value: event, done: false });
    else this.queue.push(event);
  }

  /** @internal after re-registration on a new connection: its initial fire is meaningful. */
  reregistered(): void {
    this.swallowPending = false;
  }

  /** @internal the watch cannot continue (re-registration failed, client closed). */
  fail(error: Error): void {
    if (this.finished) return;
    this.finished = true;
    const waiters = this.waiters.splice(0);
    // Reported once: to whoever is waiting now, else to the next next() call.
    if (waiters.length === 0) this.failure = error;
    for (const waiter of waiters) waiter.reject(error);
  }

  /** Events received and not yet consumed. */
  get queued(): number {
    return this.queue.length;
  }

  get active(): boolean {
    return !this.finished;
  }

  next(): Promise<IteratorResult<WatchEvent>> {
    const event = this.queue.shift();
    if (event !== undefined) return Promise.resolve({ value: event, done: false });
    if (this.failure !== undefined) {
      const failure = this.failure;
      this.failure = undefined; // reported once; afterwards the iterator is just done
      return Promise.reject(failure);
    }
    if (this.finished) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
    });
  }

  /** Unwatches (XS_UNWATCH) and ends the iteration. Idempotent. */
  async return(): Promise<IteratorResult<WatchEvent>> {
    this.finished = true;
    this.queue.length = 0;
    for (const waiter of this.waiters.splice(0)) waiter.resolve({ value: undefined, done: true });
    this.unwatchPromise ??= this.unregister();
    await this.unwatchPromise;
    return { value: undefined, done: true };
  }

  /** Same as return(), named for explicit use outside a for-await loop. */
  async close(): Promise<void> {
    await this.return();
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

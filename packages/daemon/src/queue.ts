// Work serialised per key (per domid): tasks for one domain run one after another, in arrival
// order; tasks for different domains run concurrently. A failed task does not block the next one.
export class KeyedQueue<K> {
  readonly #tails = new Map<K, Promise<unknown>>();
  readonly #depth = new Map<K, number>();

  run<T>(key: K, task: () => Promise<T> | T): Promise<T> {
    const prev = this.#tails.get(key) ?? Promise.resolve();
    this.#depth.set(key, (this.#depth.get(key) ?? 0) + 1);
    const run = prev.then(() => task());
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.#tails.set(key, tail);
    void tail.then(() => {
      const n = (this.#depth.get(key) ?? 1) - 1;
      if (n === 0) {
        this.#depth.delete(key);
        if (this.#tails.get(key) === tail) this.#tails.delete(key);
      } else {
        this.#depth.set(key, n);
      }
    });
    return run;
  }

  /** Tasks queued or running for `key`. */
  depth(key: K): number {
    return this.#depth.get(key) ?? 0;
  }

  /** Resolves when everything queued so far (for every key) has finished. */
  async idle(): Promise<void> {
    while (this.#tails.size > 0) await Promise.all([...this.#tails.values()]);
  }
}

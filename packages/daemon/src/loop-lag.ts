// Event-loop lag: how late the daemon's one thread gets to what is ready. Every await of a
// checkpoint cycle resumes only when the loop comes round (see gate.ts), so a blocked loop is a
// slow cycle. Measured by Node's own sampler (a libuv timer, no JavaScript per tick) and reported
// per window, not per scrape: two scrapers (the HTTP listener and `fastsuspend metrics`) would
// otherwise reset each other's view.
import { monitorEventLoopDelay, type IntervalHistogram } from "node:perf_hooks";

export interface LagReading {
  /** Seconds the sampler's timer ran late: 99th percentile and maximum. */
  p99: number;
  max: number;
}

export class EventLoopLag {
  readonly resolutionMs: number;
  readonly windowMs: number;
  #h: IntervalHistogram | undefined;
  #timer: NodeJS.Timeout | undefined;
  #last: LagReading | undefined;

  constructor(opts: { resolutionMs?: number; windowMs?: number } = {}) {
    this.resolutionMs = opts.resolutionMs ?? 10;
    this.windowMs = opts.windowMs ?? 10_000;
  }

  start(): void {
    if (this.#h !== undefined) return;
    this.#h = monitorEventLoopDelay({ resolution: this.resolutionMs });
    this.#h.enable();
    this.#timer = setInterval(() => {
      this.rotate();
    }, this.windowMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#h?.disable();
    this.#h = undefined;
  }

  /** Ends the current window (the timer does it every windowMs; tests call it). */
  rotate(): void {
    const h = this.#h;
    if (h === undefined) return;
    this.#last = this.#reading(h);
    h.reset();
  }

  /** The last complete window; before the first one ends, the current one. Zeros when stopped. */
  read(): LagReading {
    if (this.#last !== undefined) return this.#last;
    return this.#h === undefined ? { p99: 0, max: 0 } : this.#reading(this.#h);
  }

  #reading(h: IntervalHistogram): LagReading {
    if (h.count === 0) return { p99: 0, max: 0 };
    // The sampler records the whole time between two ticks: the lag is what exceeds the period.
    const late = (ns: number): number => Math.max(0, ns - this.resolutionMs * 1e6) / 1e9;
    return { p99: late(h.percentile(99)), max: late(h.max) };
  }
}

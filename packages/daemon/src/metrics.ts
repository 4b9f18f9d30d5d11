// Prometheus text exposition format (version 0.0.4): counters, gauges and histograms with labels.
// Latencies are recorded in seconds, as Prometheus wants them.

export type Labels = Record<string, string | number>;

/** Seconds: 0.5 ms to 10 s, dense where suspends and checkpoint cycles land. */
export const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

export function labelText(labels: Labels): string {
  const keys = Object.keys(labels).sort();
  if (keys.length === 0) return "";
  return `{${keys.map((k) => `${k}="${escapeLabel(String(labels[k]))}"`).join(",")}}`;
}

function num(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

interface HistogramSeries {
  labels: Labels;
  counts: number[];
  sum: number;
  count: number;
}

export class Histogram {
  readonly name: string;
  readonly help: string;
  readonly buckets: readonly number[];
  readonly #series = new Map<string, HistogramSeries>();

  constructor(name: string, help: string, buckets: readonly number[] = LATENCY_BUCKETS) {
    this.name = name;
    this.help = help;
    this.buckets = [...buckets].sort((a, b) => a - b);
  }

  observe(labels: Labels, value: number): void {
    const key = labelText(labels);
    let s = this.#series.get(key);
    if (s === undefined) {
      s = { labels, counts: this.buckets.map(() => 0), sum: 0, count: 0 };
      this.#series.set(key, s);
    }
    const counts = s.counts;
    this.buckets.forEach((b, i) => {
      if (value <= b) counts[i] = (counts[i] ?? 0) + 1;
    });
    s.sum += value;
    s.count++;
  }

  render(): string {
    const out = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const s of this.#series.values()) {
      this.buckets.forEach((b, i) => {
        out.push(`${this.name}_bucket${labelText({ ...s.labels, le: num(b) })} ${s.counts[i] ?? 0}`);
      });
      out.push(`${this.name}_bucket${labelText({ ...s.labels, le: "+Inf" })} ${s.count}`);
      out.push(`${this.name}_sum${labelText(s.labels)} ${num(s.sum)}`);
      out.push(`${this.name}_count${labelText(s.labels)} ${s.count}`);
    }
    return out.join("\n");
  }
}

export class Counter {
  readonly name: string;
  readonly help: string;
  readonly #values = new Map<string, { labels: Labels; value: number }>();

  constructor(name: string, help: string) {
    this.name = name;
    this.help = help;
  }

  inc(labels: Labels = {}, by = 1): void {
    const key = labelText(labels);
    const cur = this.#values.get(key);
    if (cur === undefined) this.#values.set(key, { labels, value: by });
    else cur.value += by;
  }

  get(labels: Labels = {}): number {
    return this.#values.get(labelText(labels))?.value ?? 0;
  }

  render(): string {
    const out = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const v of this.#values.values()) out.push(`${this.name}${labelText(v.labels)} ${num(v.value)}`);
    return out.join("\n");
  }
}

/** A gauge whose samples are read when rendered. */
export class Gauge {
  readonly name: string;
  readonly help: string;
  readonly #read: () => { labels: Labels; value: number }[];

  constructor(name: string, help: string, read: () => { labels: Labels; value: number }[]) {
    this.name = name;
    this.help = help;
    this.#read = read;
  }

  render(): string {
    const out = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`];
    for (const v of this.#read()) out.push(`${this.name}${labelText(v.labels)} ${num(v.value)}`);
    return out.join("\n");
  }
}

export class Registry {
  readonly #metrics: { render(): string }[] = [];

  add<T extends { render(): string }>(m: T): T {
    this.#metrics.push(m);
    return m;
  }

  render(): string {
    return `${this.#metrics.map((m) => m.render()).join("\n")}\n`;
  }
}

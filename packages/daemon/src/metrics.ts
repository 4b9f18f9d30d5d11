// Prometheus text exposition format (version 0.0.4): counters, gauges and histograms with labels.
// Hand-written rather than prom-client: the Debian package ships only @fastsuspend/* modules (no
// third-party runtime code, see docs/daemon.md), and this is all the daemon needs.
// Latencies are recorded in seconds, as Prometheus wants them.

/** What `GET /metrics` answers with, and what `fastsuspend metrics` prints. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export type LabelValue = string | number;
/** Label values by label name. */
export type Labels<L extends string = string> = Record<L, LabelValue>;

/** Seconds: 0.5 ms to 10 s, dense where suspends and checkpoint cycles land. */
export const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A label value as the text format wants it: backslash, double quote and newline escaped. */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

/** HELP text escapes backslash and newline only. */
function escapeHelp(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

/** `{a="1",b="x"}` in the order of `names` ("" when there are none). */
export function labelText(labels: Readonly<Record<string, LabelValue>>, names: readonly string[] = Object.keys(labels)): string {
  if (names.length === 0) return "";
  return `{${names.map((k) => `${k}="${escapeLabelValue(String(labels[k]))}"`).join(",")}}`;
}

/** A sample value: Go's ParseFloat reads these (NaN, +Inf, -Inf spelled its way). */
function num(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

/** Name, help and label names checked once, at construction: a bad one is a programming error. */
abstract class Metric<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly L[];
  abstract readonly type: "counter" | "gauge" | "histogram";

  constructor(name: string, help: string, labelNames: readonly L[] = []) {
    if (!METRIC_NAME.test(name)) throw new Error(`invalid metric name "${name}"`);
    for (const l of labelNames) {
      if (!LABEL_NAME.test(l) || l.startsWith("__")) throw new Error(`${name}: invalid label name "${l}"`);
    }
    if (new Set(labelNames).size !== labelNames.length) throw new Error(`${name}: duplicate label names`);
    this.name = name;
    this.help = help;
    this.labelNames = labelNames;
  }

  /** The series key; throws unless `labels` has exactly the declared names (a typo would split a series). */
  protected key(labels: Readonly<Record<string, LabelValue>>): string {
    const given = Object.keys(labels);
    if (given.length !== this.labelNames.length || this.labelNames.some((l) => !(l in labels))) {
      throw new Error(`${this.name}: labels {${given.join(",")}} given, {${this.labelNames.join(",")}} declared`);
    }
    return labelText(labels, this.labelNames);
  }

  protected header(): string[] {
    return [`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`];
  }

  abstract render(): string;
}

/** Keeps series in a map; drops those whose labels match (a domain that is gone). */
abstract class SeriesMetric<L extends string, S extends { labels: Labels<L> }> extends Metric<L> {
  protected readonly series = new Map<string, S>();

  /** Removes every series whose labels include all of `match`. */
  remove(match: Partial<Labels<L>>): void {
    const want = Object.entries(match) as [L, LabelValue][];
    for (const [k, s] of this.series) {
      if (want.every(([l, v]) => String(s.labels[l]) === String(v))) this.series.delete(k);
    }
  }
}

interface HistogramSeries<L extends string> {
  labels: Labels<L>;
  counts: number[];
  sum: number;
  count: number;
}

export class Histogram<L extends string = never> extends SeriesMetric<L, HistogramSeries<L>> {
  readonly type = "histogram";
  readonly buckets: readonly number[];

  constructor(name: string, help: string, labelNames: readonly L[] = [], buckets: readonly number[] = LATENCY_BUCKETS) {
    super(name, help, labelNames);
    if ((labelNames as readonly string[]).includes("le")) throw new Error(`${name}: "le" is the histogram's own label`);
    this.buckets = [...buckets].sort((a, b) => a - b);
  }

  observe(labels: Labels<L>, value: number): void {
    const key = this.key(labels);
    let s = this.series.get(key);
    if (s === undefined) {
      s = { labels: { ...labels }, counts: this.buckets.map(() => 0), sum: 0, count: 0 };
      this.series.set(key, s);
    }
    const counts = s.counts;
    this.buckets.forEach((b, i) => {
      if (value <= b) counts[i] = (counts[i] ?? 0) + 1;
    });
    s.sum += value;
    s.count++;
  }

  render(): string {
    const out = this.header();
    // Without labels there is one series from the start (zeros), so that rate() works at once.
    const all = this.labelNames.length === 0 && this.series.size === 0 ? [{ labels: {} as Labels<L>, counts: this.buckets.map(() => 0), sum: 0, count: 0 }] : [...this.series.values()];
    const names = [...this.labelNames, "le"];
    for (const s of all) {
      this.buckets.forEach((b, i) => {
        out.push(`${this.name}_bucket${labelText({ ...s.labels, le: num(b) }, names)} ${s.counts[i] ?? 0}`);
      });
      out.push(`${this.name}_bucket${labelText({ ...s.labels, le: "+Inf" }, names)} ${s.count}`);
      out.push(`${this.name}_sum${labelText(s.labels, this.labelNames)} ${num(s.sum)}`);
      out.push(`${this.name}_count${labelText(s.labels, this.labelNames)} ${s.count}`);
    }
    return out.join("\n");
  }
}

export class Counter<L extends string = never> extends SeriesMetric<L, { labels: Labels<L>; value: number }> {
  readonly type = "counter";

  /** `labels` may be left out by a counter without labels. */
  inc(labels: Labels<L> = {} as Labels<L>, by = 1): void {
    if (!(by >= 0)) throw new Error(`${this.name}: a counter only goes up (inc by ${by})`);
    const key = this.key(labels);
    const cur = this.series.get(key);
    if (cur === undefined) this.series.set(key, { labels: { ...labels }, value: by });
    else cur.value += by;
  }

  get(labels: Labels<L> = {} as Labels<L>): number {
    return this.series.get(this.key(labels))?.value ?? 0;
  }

  render(): string {
    const out = this.header();
    // Without labels: 0 until the first inc, so that the series exists from the start.
    if (this.labelNames.length === 0 && this.series.size === 0) out.push(`${this.name} 0`);
    for (const v of this.series.values()) out.push(`${this.name}${labelText(v.labels, this.labelNames)} ${num(v.value)}`);
    return out.join("\n");
  }
}

export interface GaugeSample<L extends string> {
  labels: Labels<L>;
  value: number;
}

/** A gauge whose samples are read when rendered. */
export class Gauge<L extends string = never> extends Metric<L> {
  readonly type = "gauge";
  readonly #read: () => GaugeSample<L>[];

  constructor(name: string, help: string, labelNames: readonly L[], read: () => GaugeSample<L>[]) {
    super(name, help, labelNames);
    this.#read = read;
  }

  render(): string {
    const out = this.header();
    const seen = new Set<string>();
    for (const v of this.#read()) {
      const key = this.key(v.labels);
      // Two samples with the same labels would make the whole scrape fail: keep the first.
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(`${this.name}${key} ${num(v.value)}`);
    }
    return out.join("\n");
  }
}

export class Registry {
  readonly #metrics = new Map<string, { render(): string }>();

  add<T extends { name: string; render(): string }>(m: T): T {
    if (this.#metrics.has(m.name)) throw new Error(`metric ${m.name} is registered twice`);
    this.#metrics.set(m.name, m);
    return m;
  }

  /** The whole exposition, every line ended by a newline (the format wants the last one too). */
  render(): string {
    return `${[...this.#metrics.values()].map((m) => m.render()).join("\n")}\n`;
  }
}

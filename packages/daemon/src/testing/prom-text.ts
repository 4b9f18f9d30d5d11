// A strict parser of the Prometheus text exposition format 0.0.4, for tests: it refuses what
// Prometheus or node_exporter's textfile collector would refuse or misread, so a test that parses
// our output proves it scrapeable. Written here rather than taken from npm: the package there
// (parse-prometheus-text-format) merges the series of a labelled histogram into one and accepts
// unknown escapes and repeated TYPE lines without a word.
// The rules: https://prometheus.io/docs/instrumenting/exposition_formats/ (text-based format).

export type MetricType = "counter" | "gauge" | "histogram" | "summary" | "untyped";

export interface PromSample {
  /** The sample's own name (`x_bucket`, `x_sum`... for a histogram's). */
  name: string;
  labels: Record<string, string>;
  value: number;
  timestampMs?: number;
}

export interface PromFamily {
  name: string;
  help: string | undefined;
  type: MetricType;
  samples: PromSample[];
}

export class PromParseError extends Error {
  readonly line: number;
  constructor(line: number, message: string) {
    super(`line ${line}: ${message}`);
    this.name = "PromParseError";
    this.line = line;
  }
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES: readonly MetricType[] = ["counter", "gauge", "histogram", "summary", "untyped"];
const FLOAT = /^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/;

/** A value as Go's strconv.ParseFloat reads it (what Prometheus uses). */
function parseValue(text: string, line: number): number {
  if (/^[+-]?inf$/i.test(text)) return text.startsWith("-") ? -Infinity : Infinity;
  if (/^nan$/i.test(text)) return NaN;
  if (!FLOAT.test(text)) throw new PromParseError(line, `"${text}" is not a number`);
  return Number(text);
}

/** HELP: `\\` and `\n` are the only escapes; any other backslash stays as it is. */
function unescapeHelp(text: string): string {
  return text.replace(/\\([\\n])/g, (_m, c: string) => (c === "n" ? "\n" : "\\"));
}

/** `{a="x",b="y"}` from position `i` of `line`; returns the labels and the position after `}`. */
function parseLabels(line: string, start: number, lineNo: number): { labels: Record<string, string>; end: number } {
  const labels: Record<string, string> = {};
  let i = start + 1;
  const skipBlanks = (): void => {
    while (line[i] === " " || line[i] === "\t") i++;
  };
  for (;;) {
    skipBlanks();
    if (line[i] === "}") return { labels, end: i + 1 };
    const nameStart = i;
    while (i < line.length && /[a-zA-Z0-9_]/.test(line[i] ?? "")) i++;
    const name = line.slice(nameStart, i);
    if (!LABEL_NAME.test(name) || name.startsWith("__")) throw new PromParseError(lineNo, `invalid label name "${name}"`);
    if (name in labels) throw new PromParseError(lineNo, `label "${name}" given twice`);
    skipBlanks();
    if (line[i] !== "=") throw new PromParseError(lineNo, `expected "=" after label ${name}`);
    i++;
    skipBlanks();
    if (line[i] !== '"') throw new PromParseError(lineNo, `expected '"' to open the value of label ${name}`);
    i++;
    let value = "";
    for (;;) {
      const c = line[i];
      if (c === undefined) throw new PromParseError(lineNo, `unterminated value of label ${name}`);
      i++;
      if (c === '"') break;
      if (c !== "\\") {
        value += c;
        continue;
      }
      const e = line[i];
      i++;
      if (e === "\\") value += "\\";
      else if (e === '"') value += '"';
      else if (e === "n") value += "\n";
      else throw new PromParseError(lineNo, `invalid escape "\\${e ?? ""}" in the value of label ${name}`);
    }
    labels[name] = value;
    skipBlanks();
    if (line[i] === ",") {
      i++;
      continue;
    }
    if (line[i] === "}") return { labels, end: i + 1 };
    throw new PromParseError(lineNo, `expected "," or "}" after label ${name}`);
  }
}

function parseSample(line: string, lineNo: number): PromSample {
  const m = /^[^\s{]+/.exec(line);
  const name = m?.[0] ?? "";
  if (!METRIC_NAME.test(name)) throw new PromParseError(lineNo, `invalid metric name "${name}"`);
  let i = name.length;
  let labels: Record<string, string> = {};
  if (line[i] === "{") ({ labels, end: i } = parseLabels(line, i, lineNo));
  const rest = line.slice(i);
  if (!/^[ \t]/.test(rest)) throw new PromParseError(lineNo, "expected a blank before the value");
  const fields = rest.trim().split(/[ \t]+/);
  if (fields.length > 2) throw new PromParseError(lineNo, `unexpected text after the value: "${fields.slice(2).join(" ")}"`);
  const value = parseValue(fields[0] ?? "", lineNo);
  const ts = fields[1];
  if (ts !== undefined && !/^-?[0-9]+$/.test(ts)) throw new PromParseError(lineNo, `invalid timestamp "${ts}"`);
  return { name, labels, value, ...(ts === undefined ? {} : { timestampMs: Number(ts) }) };
}

/** The family a sample belongs to, given the TYPEs declared so far. */
function familyOf(sample: string, families: Map<string, PromFamily>): string {
  for (const suffix of ["_bucket", "_sum", "_count"]) {
    if (!sample.endsWith(suffix)) continue;
    const base = families.get(sample.slice(0, -suffix.length));
    if (base?.type === "histogram" || (base?.type === "summary" && suffix !== "_bucket")) return base.name;
  }
  return sample;
}

const seriesKey = (s: PromSample): string => `${s.name}${JSON.stringify(Object.entries(s.labels).sort(([a], [b]) => a.localeCompare(b)))}`;

/** Every series of a histogram: buckets in le order, cumulative, +Inf equal to _count, _sum there. */
function checkHistogram(f: PromFamily): void {
  const series = new Map<string, { buckets: [number, number][]; sum?: number; count?: number }>();
  for (const s of f.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort(([a], [b]) => a.localeCompare(b)));
    const cur = series.get(key) ?? { buckets: [] };
    series.set(key, cur);
    if (s.name === `${f.name}_bucket`) {
      if (le === undefined) throw new Error(`${f.name}: a bucket without "le"`);
      cur.buckets.push([parseValue(le, 0), s.value]);
    } else if (s.name === `${f.name}_sum`) cur.sum = s.value;
    else if (s.name === `${f.name}_count`) cur.count = s.value;
    else throw new Error(`${f.name}: histogram sample ${s.name}`);
  }
  for (const [key, s] of series) {
    const les = s.buckets.map(([le]) => le);
    if (les.some((le, i) => i > 0 && le <= (les[i - 1] ?? -Infinity))) throw new Error(`${f.name}${key}: buckets not in ascending le order`);
    if (s.buckets.some(([, n], i) => i > 0 && n < (s.buckets[i - 1]?.[1] ?? 0))) throw new Error(`${f.name}${key}: bucket counts not cumulative`);
    const inf = s.buckets.at(-1);
    if (inf?.[0] !== Infinity) throw new Error(`${f.name}${key}: no le="+Inf" bucket`);
    if (s.count === undefined || s.sum === undefined) throw new Error(`${f.name}${key}: _sum or _count missing`);
    if (inf[1] !== s.count) throw new Error(`${f.name}${key}: +Inf bucket ${inf[1]} != _count ${s.count}`);
  }
}

/** Parses a whole exposition; throws PromParseError (or Error for a histogram's inconsistency). */
export function parsePrometheusText(text: string): Map<string, PromFamily> {
  if (text !== "" && !text.endsWith("\n")) throw new PromParseError(text.split("\n").length, "the last line must end with a newline");
  const families = new Map<string, PromFamily>();
  const seen = new Set<string>();
  let current: string | undefined;
  const family = (name: string, lineNo: number): PromFamily => {
    let f = families.get(name);
    if (f !== undefined && current !== name) throw new PromParseError(lineNo, `${name}: its lines are not one group (${current ?? "?"} came in between)`);
    if (f === undefined) {
      f = { name, help: undefined, type: "untyped", samples: [] };
      families.set(name, f);
    }
    current = name;
    return f;
  };
  const typed = new Set<string>();
  text.split("\n").forEach((raw, idx) => {
    const lineNo = idx + 1;
    const line = raw.replace(/^[ \t]+/, "");
    if (line.trim() === "") return;
    if (line.startsWith("#")) {
      const m = /^#[ \t]+(HELP|TYPE)[ \t]+(\S+)(?:[ \t]+(.*))?$/.exec(line);
      if (m === null) return; // a plain comment
      const [, kind, name = "", arg] = m;
      if (!METRIC_NAME.test(name)) throw new PromParseError(lineNo, `invalid metric name "${name}" in ${kind}`);
      const f = family(name, lineNo);
      if (kind === "HELP") {
        if (f.help !== undefined) throw new PromParseError(lineNo, `${name}: a second HELP line`);
        f.help = unescapeHelp(arg ?? "");
        return;
      }
      const type = (arg ?? "").trim() as MetricType;
      if (!TYPES.includes(type)) throw new PromParseError(lineNo, `${name}: unknown type "${arg ?? ""}"`);
      if (typed.has(name)) throw new PromParseError(lineNo, `${name}: a second TYPE line`);
      if (f.samples.length > 0) throw new PromParseError(lineNo, `${name}: TYPE after its samples`);
      typed.add(name);
      f.type = type;
      return;
    }
    const s = parseSample(line.replace(/[ \t]+$/, ""), lineNo);
    const f = family(familyOf(s.name, families), lineNo);
    const key = seriesKey(s);
    if (seen.has(key)) throw new PromParseError(lineNo, `${s.name}: the same series twice`);
    seen.add(key);
    if (f.type === "counter" && !(s.value >= 0)) throw new PromParseError(lineNo, `${s.name}: a counter must be a non-negative number`);
    f.samples.push(s);
  });
  for (const f of families.values()) if (f.type === "histogram") checkHistogram(f);
  return families;
}

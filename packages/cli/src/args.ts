// Command-line parsing (node:util parseArgs, strict): one command, one domain, known flags only.
import { parseArgs } from "node:util";

import { allPathNames, parsePath } from "@fastsuspend/coordinator";
import { DOMID_MAX, isDomid } from "@fastsuspend/xen";

import { UsageError } from "./exit-codes";
import { COMMAND_SPECS, COMMANDS, commandsTaking, flagApplies, FLAG_VALUES, usageText, type Command, type Flag } from "./usage";

export { COMMANDS, type Command } from "./usage";

export interface CliArgs {
  command: Command | "help" | "version";
  /** help: the command asked about (undefined: the overview). */
  helpFor?: Command;
  /** The domain id; -1 when none was given (status) or DOM is a name not resolved yet. */
  domid: number;
  /** DOM as given when it is a name: run() resolves it to `domid` through xenstore, as xl does. */
  domName?: string;
  json: boolean;
  path?: string;
  timeoutMs?: number;
  full: boolean;
  intervalMs?: number;
  count?: number;
  /** checkpoint: stop after the cycle in flight once this many seconds have passed. */
  forSeconds?: number;
  cycles?: number;
  paths?: string[];
  /** bench-run: where the JSON result is written; metrics: the textfile written instead of stdout. */
  output?: string;
  xsResume?: "inline" | "deferred" | "skip" | "auto";
  fallback: boolean;
  xlSave?: number;
  guestKernel?: string;
  /** Work directly even when fastsuspendd runs. */
  noDaemon?: boolean;
  /** checkpoint: progress lines on stderr even when it is not a terminal. */
  progress?: boolean;
}

/** The overview (`fastsuspend --help`). */
export const USAGE = usageText();

/**
 * The longest --for: setTimeout takes at most 2^31 - 1 ms and fires at once (after a warning) for
 * anything longer, which would stop the loop before its first cycle.
 */
export const MAX_FOR_SECONDS = Math.floor((2 ** 31 - 1) / 1000);

function intFlag(name: string, v: string | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (v === undefined) return undefined;
  if (!/^[0-9]+$/.test(v)) throw new UsageError(`--${name} must be a non-negative integer, got "${v}"`);
  const n = Number(v);
  if (n < min) throw new UsageError(`--${name} must be at least ${min}, got ${n}`);
  if (n > max) throw new UsageError(`--${name} must be at most ${max}, got ${n}`);
  return n;
}

/**
 * DOM as xl reads it (libxl_domain_qualifier_to_domid): all digits is an id, anything else a
 * name, which run() looks up in xenstore once Xen is open.
 */
export function parseDom(v: string | undefined, command: string): { domid: number } | { domName: string } {
  if (v === undefined) throw new UsageError(`${command}: missing DOM (a domain name or id, as in \`xl list\`)`);
  if (v === "") throw new UsageError(`${command}: DOM is empty (a domain name or id, as in \`xl list\`)`);
  if (!/^[0-9]+$/.test(v)) return { domName: v };
  const domid = Number(v);
  if (!isDomid(domid)) throw new UsageError(`${command}: a domain id is at most ${DOMID_MAX}, got ${v}`);
  return { domid };
}

/** --path and --paths take known path names: a typo is bad usage, not a failed suspend. */
function checkPathName(flag: string, name: string): void {
  if (parsePath(name) === undefined) throw new UsageError(`--${flag}: unknown path "${name}" (known: ${allPathNames().join(", ")})`);
}

const takesString = (f: Flag): boolean => FLAG_VALUES[f] !== undefined;

const PARSE_OPTIONS = Object.fromEntries(
  (Object.keys(FLAG_VALUES) as Flag[]).map((f) => [f, { type: takesString(f) ? "string" : "boolean", ...(f === "help" ? { short: "h" } : {}) }]),
) as Record<Flag, { type: "boolean" | "string"; short?: string }>;

/** What parseArgs returns for the flags given. */
type Values = Partial<Record<Flag, string | boolean>>;

/** node:util parseArgs (strict), its errors made usage errors. */
function parseArgv(argv: readonly string[]): { values: Values; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({ args: [...argv], allowPositionals: true, strict: true, options: PARSE_OPTIONS });
    return { values, positionals };
  } catch (err) {
    // Matched by shape: node:util's errors (TypeError with code ERR_PARSE_ARGS_*) may come from
    // another realm (e.g. under Jest).
    const message = (err as { message?: unknown }).message;
    throw new UsageError(typeof message === "string" ? (message.split("\n")[0] ?? message) : "bad arguments");
  }
}

const BENCH_MOVED = "bench: the host side of the benchmark (it boots the nested lab) is `npm run bench` in a checkout; in dom0 use `fastsuspend bench-run DOM`";

/** The command named by `name` (after `fastsuspend` or `fastsuspend help`), or a usage error. */
function commandNamed(name: string): Command {
  if (name === "bench") throw new UsageError(BENCH_MOVED);
  const command = COMMANDS.find((c) => c === name);
  if (command === undefined) throw new UsageError(`unknown command "${name}" (commands: ${COMMANDS.join(", ")})`);
  return command;
}

const NO_ARGS = { domid: -1, json: false, full: false, fallback: false } as const;

/** `fastsuspend help [CMD]`, `fastsuspend [CMD] --help`, `fastsuspend --version`, or undefined. */
function helpOrVersion(values: Values, positionals: readonly string[]): CliArgs | undefined {
  if (values.version === true) return { command: "version", ...NO_ARGS };
  const [first, topic, extra] = positionals;
  if (first === "help") {
    if (extra !== undefined) throw new UsageError(`help: unexpected argument "${extra}"`);
    return { command: "help", ...NO_ARGS, ...(topic === undefined ? {} : { helpFor: commandNamed(topic) }) };
  }
  if (values.help !== true) return undefined;
  return { command: "help", ...NO_ARGS, ...(first === undefined ? {} : { helpFor: commandNamed(first) }) };
}

/** Every flag given must be one the command takes (a silently ignored flag hides a mistake). */
function checkFlagsApply(command: Command, values: Values): void {
  for (const flag of Object.keys(values) as Flag[]) {
    if (flagApplies(command, flag)) continue;
    const takers = commandsTaking(flag);
    throw new UsageError(`${command}: --${flag} only applies to ${takers.join(", ")} (see \`fastsuspend help ${command}\`)`);
  }
}

/** The options' values, each checked (the command-specific requirements are checkRequired's). */
function optionArgs(v: Values): Omit<CliArgs, "command" | "domid" | "domName"> {
  const str = (f: Flag): string | undefined => (typeof v[f] === "string" ? v[f] : undefined);
  const xsResume = str("xs-resume");
  if (xsResume !== undefined && xsResume !== "inline" && xsResume !== "deferred" && xsResume !== "skip" && xsResume !== "auto") {
    throw new UsageError(`--xs-resume must be inline, deferred, skip or auto, got "${xsResume}"`);
  }
  const path = str("path");
  if (path !== undefined) checkPathName("path", path);
  const paths = str("paths")?.split(",").filter((p) => p !== "");
  for (const p of paths ?? []) checkPathName("paths", p);
  const output = str("output");
  if (output === "") throw new UsageError("--output: FILE is empty");
  return {
    json: v.json === true,
    ...(output === undefined ? {} : { output }),
    full: v.full === true,
    fallback: v.fallback === true,
    ...(path === undefined ? {} : { path }),
    ...(v.timeout === undefined ? {} : { timeoutMs: intFlag("timeout", str("timeout"), 1) }),
    ...(v.interval === undefined ? {} : { intervalMs: intFlag("interval", str("interval"), 0) }),
    ...(v.count === undefined ? {} : { count: intFlag("count", str("count"), 1) }),
    ...(v.for === undefined ? {} : { forSeconds: intFlag("for", str("for"), 1, MAX_FOR_SECONDS) }),
    ...(v.cycles === undefined ? {} : { cycles: intFlag("cycles", str("cycles"), 1) }),
    ...(paths === undefined ? {} : { paths }),
    ...(xsResume === undefined ? {} : { xsResume }),
    ...(v["xl-save"] === undefined ? {} : { xlSave: intFlag("xl-save", str("xl-save"), 0) }),
    ...(v["guest-kernel"] === undefined ? {} : { guestKernel: str("guest-kernel") }),
    ...(v["no-daemon"] === true ? { noDaemon: true } : {}),
    ...(v.progress === true ? { progress: true } : {}),
  };
}

/** The flags a command cannot run without. */
function checkRequired(args: CliArgs): void {
  if (args.command === "bench-run") {
    if (args.output === undefined) throw new UsageError("bench-run: --output FILE is required");
    if (args.cycles === undefined) throw new UsageError("bench-run: --cycles N is required");
  }
  if (args.command === "checkpoint") {
    if (args.intervalMs === undefined) throw new UsageError("checkpoint: --interval MS is required");
    if (args.count === undefined) throw new UsageError("checkpoint: --count N is required");
  }
}

/** DOM as the command takes it: required (most), optional (status) or none (metrics). */
function domTarget(command: Command, dom: string | undefined): { domid: number } | { domName: string } {
  const takes = COMMAND_SPECS[command].dom ?? "required";
  if (takes === "none") {
    if (dom !== undefined) throw new UsageError(`${command}: unexpected argument "${dom}" (it takes no DOM)`);
    return { domid: -1 };
  }
  if (takes === "optional" && dom === undefined) return { domid: -1 };
  return parseDom(dom, command);
}

export function parseCli(argv: readonly string[]): CliArgs {
  const { values, positionals } = parseArgv(argv);
  const help = helpOrVersion(values, positionals);
  if (help !== undefined) return help;
  const [cmd, dom, ...extra] = positionals;
  if (cmd === undefined) throw new UsageError("missing COMMAND (try --help)");
  const command = commandNamed(cmd);
  if (extra.length > 0) throw new UsageError(`${command}: unexpected argument "${String(extra[0])}"`);
  checkFlagsApply(command, values);
  const target = domTarget(command, dom);
  const args: CliArgs = {
    command,
    ...("domName" in target ? { domid: -1, domName: target.domName } : { domid: target.domid }),
    ...optionArgs(values),
  };
  checkRequired(args);
  return args;
}

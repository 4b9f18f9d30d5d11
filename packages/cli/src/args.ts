// Command-line parsing (node:util parseArgs, strict): one command, one domain, known flags only.
import { parseArgs } from "node:util";

import { UsageError } from "./exit-codes";

export const COMMANDS = ["suspend", "resume", "checkpoint", "info", "status", "bench-run"] as const;
export type Command = (typeof COMMANDS)[number];

export interface CliArgs {
  command: Command | "help";
  domid: number;
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
  jsonFile?: string;
  xsResume?: "inline" | "deferred" | "skip";
  fallback: boolean;
  xlSave?: number;
  guestKernel?: string;
  /** Work directly even when fastsuspendd runs. */
  noDaemon?: boolean;
}

export const USAGE = `usage: fastsuspend COMMAND DOM [options]

commands:
  suspend DOM                 suspend the domain (it stays suspended)
  resume DOM [--full]         resume a suspended domain (cooperative unless --full)
  checkpoint DOM --interval MS --count N [--for SECONDS]
                              suspend/resume N times, MS apart (Remus-style, no memory copy);
                              with --for, stop after the cycle in flight once SECONDS have passed
  info DOM                    capabilities and the paths that would be used
  status [DOM]                fastsuspendd's view: loops, sessions, latencies (needs the daemon)
  bench-run DOM --cycles N [--paths a,b,...] [--interval MS] --json FILE
                              the in-dom0 half of the benchmark: N cycles per path, xl save -c
                              (the host half, which boots the nested lab, is \`npm run bench\`)

options:
  --path NAME        trigger+notification, e.g. xenstore+watch, evtchn+evtchn, xenstore+virq
  --timeout MS       suspend timeout (default 10000)
  --json             print JSON (for bench-run: --json FILE writes the result there)
  --fallback         on a timeout or setup failure, try the next available path
  --xs-resume MODE   inline (default), deferred or skip
  --xl-save N        bench-run: times to run \`xl save -c DOM /dev/null\` (default 3; 0 skips)
  --guest-kernel S   bench-run: recorded in the JSON as guestKernel
  --no-daemon        work directly even when fastsuspendd runs (suspend, resume, checkpoint and
                     info go through it when its socket, $FASTSUSPEND_SOCKET or
                     /run/fastsuspend/daemon.sock, answers)
  --help             this text

exit codes: 0 ok, 1 operation failed, 2 bad usage, 3 environment (not root, no /dev/xen,
unknown or dying domain, dom0 given)`;

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

export function parseDomid(v: string | undefined, command: string): number {
  if (v === undefined) throw new UsageError(`${command}: missing DOM (a domain id; \`xl domid NAME\` gives it)`);
  if (!/^(0|[1-9][0-9]{0,4})$/.test(v) || Number(v) >= 0x7ff0) {
    throw new UsageError(`${command}: DOM must be a domain id (0-32751), got "${v}"; for a name use \`xl domid ${v}\``);
  }
  return Number(v);
}

export function parseCli(argv: readonly string[]): CliArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        help: { type: "boolean", short: "h" },
        json: { type: "string" },
        path: { type: "string" },
        timeout: { type: "string" },
        full: { type: "boolean" },
        interval: { type: "string" },
        count: { type: "string" },
        for: { type: "string" },
        cycles: { type: "string" },
        paths: { type: "string" },
        "xs-resume": { type: "string" },
        fallback: { type: "boolean" },
        "xl-save": { type: "string" },
        "guest-kernel": { type: "string" },
        "no-daemon": { type: "boolean" },
      },
    });
  } catch (err) {
    // Matched by shape: node:util's errors may come from another realm (e.g. under Jest).
    const message = (err as { message?: unknown }).message;
    throw new UsageError(typeof message === "string" ? (message.split("\n")[0] ?? message) : "bad arguments");
  }
  const { values: v, positionals } = parsed;
  if (v.help === true || positionals.length === 0) {
    if (positionals.length === 0 && v.help !== true) throw new UsageError("missing COMMAND (try --help)");
    return { command: "help", domid: -1, json: false, full: false, fallback: false };
  }
  const [cmd, dom, ...extra] = positionals;
  const command = COMMANDS.find((c) => c === cmd);
  if (cmd === "bench") throw new UsageError("bench: the host side of the benchmark (it boots the nested lab) is `npm run bench` in a checkout; in dom0 use `fastsuspend bench-run DOM`");
  if (command === undefined) throw new UsageError(`unknown command "${String(cmd)}" (commands: ${COMMANDS.join(", ")})`);
  if (extra.length > 0) throw new UsageError(`${command}: unexpected argument "${String(extra[0])}"`);
  const domid = command === "status" && dom === undefined ? -1 : parseDomid(dom, command);

  // --json is a flag for most commands and takes FILE for bench-run (see normaliseJsonFlag).
  const xsResume = v["xs-resume"];
  if (xsResume !== undefined && xsResume !== "inline" && xsResume !== "deferred" && xsResume !== "skip") {
    throw new UsageError(`--xs-resume must be inline, deferred or skip, got "${xsResume}"`);
  }
  const args: CliArgs = {
    command,
    domid,
    json: v.json !== undefined,
    full: v.full === true,
    fallback: v.fallback === true,
    ...(v.path === undefined ? {} : { path: v.path }),
    ...(v.timeout === undefined ? {} : { timeoutMs: intFlag("timeout", v.timeout, 1) }),
    ...(v.interval === undefined ? {} : { intervalMs: intFlag("interval", v.interval, 0) }),
    ...(v.count === undefined ? {} : { count: intFlag("count", v.count, 1) }),
    ...(v.for === undefined ? {} : { forSeconds: intFlag("for", v.for, 1, MAX_FOR_SECONDS) }),
    ...(v.cycles === undefined ? {} : { cycles: intFlag("cycles", v.cycles, 1) }),
    ...(v.paths === undefined ? {} : { paths: v.paths.split(",").filter((p) => p !== "") }),
    ...(xsResume === undefined ? {} : { xsResume }),
    ...(v["xl-save"] === undefined ? {} : { xlSave: intFlag("xl-save", v["xl-save"], 0) }),
    ...(v["guest-kernel"] === undefined ? {} : { guestKernel: v["guest-kernel"] }),
    ...(v["no-daemon"] === true ? { noDaemon: true } : {}),
  };
  if (command === "bench-run") {
    if (v.json === undefined || v.json === "") throw new UsageError("bench-run: --json FILE is required");
    args.jsonFile = v.json;
    if (args.cycles === undefined) throw new UsageError("bench-run: --cycles N is required");
  }
  if (command === "checkpoint") {
    if (args.intervalMs === undefined) throw new UsageError("checkpoint: --interval MS is required");
    if (args.count === undefined) throw new UsageError("checkpoint: --count N is required");
  }
  if (args.full && command !== "resume") throw new UsageError(`${command}: --full only applies to resume`);
  if (args.forSeconds !== undefined && command !== "checkpoint") throw new UsageError(`${command}: --for only applies to checkpoint`);
  return args;
}

/** `--json` alone (no value) is a boolean for the non-bench commands: rewrite it to `--json=1`. */
export function normaliseJsonFlag(argv: readonly string[]): string[] {
  const isBenchRun = argv.includes("bench-run");
  return argv.map((a) => (a === "--json" && !isBenchRun ? "--json=1" : a));
}

// What each command takes and says about itself. One table drives the parser's "does this flag
// apply here" check and the help texts, so `fastsuspend help CMD` lists exactly what CMD accepts.

export const COMMANDS = ["suspend", "resume", "checkpoint", "info", "status", "metrics", "bench-run"] as const;
export type Command = (typeof COMMANDS)[number];

/** Every flag parseArgs knows, with the placeholder of its value (undefined: a boolean). */
export const FLAG_VALUES = {
  help: undefined,
  version: undefined,
  json: undefined,
  path: "NAME",
  timeout: "MS",
  full: undefined,
  interval: "MS",
  count: "N",
  for: "SECONDS",
  cycles: "N",
  paths: "A,B,...",
  "xs-resume": "MODE",
  fallback: undefined,
  "xl-save": "N",
  "guest-kernel": "S",
  "no-daemon": undefined,
  progress: undefined,
  output: "FILE",
} as const;
export type Flag = keyof typeof FLAG_VALUES;

/** Flags every command accepts (they are not listed per command). */
const GLOBAL_FLAGS: readonly Flag[] = ["help", "version"];

interface CommandSpec {
  /** What follows `fastsuspend` (flags in brackets are optional). */
  synopsis: string;
  /** Whether the command takes DOM (default "required"). */
  dom?: "required" | "optional" | "none";
  /** One line for the command list. */
  summary: string;
  /** A paragraph for `help CMD`. */
  details?: string;
  /** The flags the command accepts, each with its help text for this command. */
  flags: Partial<Record<Flag, string>>;
}

const PATH_HELP = "trigger+notification to use, e.g. xenstore+watch (libxl's), evtchn+evtchn (default: the fastest available)";
const TIMEOUT_HELP = "suspend timeout (default 10000)";
const FALLBACK_HELP = "on a timeout or setup failure, try the next available path";
const NO_DAEMON_HELP = "work directly even when fastsuspendd runs (by default the command goes through it when its socket, $FASTSUSPEND_SOCKET or /run/fastsuspend/daemon.sock, answers)";

/** Said in the overview and in suspend's and resume's help: admins reach for xl pause otherwise. */
const NOT_XL_PAUSE = `suspend and resume are not \`xl pause\` / \`xl unpause\`: the guest really suspends (its
kernel quiesces its drivers and the domain shuts down with reason "suspend", as for \`xl save\`),
and resume is a cooperative resume of such a guest (it carries on where it stopped, its devices
reconnected). A paused domain is not suspended: unpause it with \`xl unpause\`.`;

export const COMMAND_SPECS: Record<Command, CommandSpec> = {
  suspend: {
    synopsis: "suspend DOM [--path NAME] [--timeout MS] [--fallback] [--json] [--no-daemon]",
    summary: "suspend the domain (it stays suspended until `fastsuspend resume`)",
    details: NOT_XL_PAUSE,
    flags: { path: PATH_HELP, timeout: TIMEOUT_HELP, fallback: FALLBACK_HELP, json: "print the result as JSON", "no-daemon": NO_DAEMON_HELP },
  },
  resume: {
    synopsis: "resume DOM [--full] [--xs-resume MODE] [--json] [--no-daemon]",
    summary: "resume a suspended domain (cooperative unless --full)",
    details: NOT_XL_PAUSE,
    flags: {
      full: "a full (non-cooperative) resume: the guest reconnects its devices as after a restore",
      "xs-resume": "skip: do not send XS_RESUME to xenstored after the resume (default: send it)",
      json: "print the result as JSON",
      "no-daemon": NO_DAEMON_HELP,
    },
  },
  checkpoint: {
    synopsis: "checkpoint DOM --interval MS --count N [--for SECONDS] [options]",
    summary: "suspend/resume N times, MS apart (Remus-style checkpoints, no memory copy)",
    details: "Each cycle suspends the guest and resumes it cooperatively. Ctrl-C, SIGTERM or a hangup stops\nthe loop after the cycle in flight and leaves the guest running.",
    flags: {
      interval: "pause between cycles (required; 0: back to back)",
      count: "cycles to run (required)",
      for: "stop after the cycle in flight once SECONDS have passed (exit 0)",
      path: PATH_HELP,
      timeout: TIMEOUT_HELP,
      fallback: FALLBACK_HELP,
      "xs-resume": "when XS_RESUME is sent: auto (default: never on oxenstored, whose XS_RESUME does nothing; in the cycle elsewhere), inline (in the cycle, as libxl), deferred (after it) or skip",
      json: "print the loop's result as JSON on stdout",
      progress: "a progress line on stderr every 5 s (done, ok, failed, rate); on by default when stderr is a terminal",
      "no-daemon": NO_DAEMON_HELP,
    },
  },
  info: {
    synopsis: "info DOM [--path NAME] [--json] [--no-daemon]",
    summary: "capabilities and the path that would be used",
    flags: { path: "show whether this path would be used", json: "print as JSON", "no-daemon": NO_DAEMON_HELP },
  },
  status: {
    dom: "optional",
    synopsis: "status [DOM] [--json]",
    summary: "fastsuspendd's view: domains, sessions, loops, latencies (needs the daemon)",
    flags: { json: "print the daemon's answer as JSON", "no-daemon": "(status needs the daemon: with this flag it fails)" },
  },
  metrics: {
    dom: "none",
    synopsis: "metrics [--output FILE]",
    summary: "fastsuspendd's Prometheus metrics in the text format (needs the daemon)",
    details: `Read over the daemon's socket and printed as Prometheus scrapes them (fastsuspendd
--metrics-listen serves the same over HTTP on loopback). For node_exporter's textfile collector,
run \`fastsuspend metrics --output DIR/fastsuspend.prom\` every 15-60 s (a systemd timer, cron).`,
    flags: {
      output: "write to FILE instead, atomically (a temporary file renamed over it), for node_exporter's textfile collector; without the process_* metrics, which node_exporter exports under the same names",
      "no-daemon": "(metrics needs the daemon: with this flag it fails)",
    },
  },
  "bench-run": {
    synopsis: "bench-run DOM --cycles N --output FILE [--paths A,B,...] [options]",
    summary: "the in-dom0 half of the benchmark: N cycles per path, then xl save -c",
    details: "The host half, which boots the nested lab and runs this in its dom0, is `npm run bench` in a\ncheckout (`npm run bench -- --help`).",
    flags: {
      cycles: "cycles per path (required)",
      output: "where the JSON result is written (required; rewritten after each path, so a stopped run keeps what it measured)",
      paths: "the paths to measure (default: those of the seed the domain supports)",
      interval: "pause between cycles (default 20)",
      "xl-save": "times to run `xl save -c DOM /dev/null` for scale (default 3; 0 skips)",
      "guest-kernel": "recorded in the JSON as guestKernel",
      timeout: TIMEOUT_HELP,
      "xs-resume": "auto (default; xenstore+watch, libxl's path, always inline), inline, deferred or skip",
    },
  },
};

/** Whether `flag` may be given to `command`. */
export function flagApplies(command: Command, flag: Flag): boolean {
  return GLOBAL_FLAGS.includes(flag) || COMMAND_SPECS[command].flags[flag] !== undefined;
}

/** The commands that accept `flag`, for the error that says where it belongs. */
export function commandsTaking(flag: Flag): Command[] {
  return COMMANDS.filter((c) => COMMAND_SPECS[c].flags[flag] !== undefined);
}

const DOM_HELP = "DOM is a domain name or id, as xl takes them (a name is looked up in xenstore, like `xl domid`).";
const EXIT_HELP = `exit codes: 0 ok, 1 operation failed, 2 bad usage, 3 environment (not root, no /dev/xen,
no such domain, a dying domain, dom0 given)`;

function flagLabel(flag: Flag): string {
  const value = FLAG_VALUES[flag];
  return value === undefined ? `--${flag}` : `--${flag} ${value}`;
}

/** Help stays readable in a 100-column terminal. */
const LINE_WIDTH = 100;

/** `text` broken at spaces into lines of at most `width` characters (a longer word stays whole). */
export function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === "" ? word : `${line} ${word}`;
    }
  }
  return [...lines, line];
}

/**
 * Two columns, the second aligned and wrapped under itself; a label too long for the first column
 * gets its text on the next line.
 */
function columns(rows: readonly (readonly [string, string])[], width: number): string {
  const indent = " ".repeat(width + 2);
  return rows
    .map(([label, text]) => {
      const [first = "", ...rest] = wrap(text, LINE_WIDTH - indent.length);
      const head = label.length < width ? `  ${label.padEnd(width)}${first}` : `  ${label}\n${indent}${first}`;
      return [head, ...rest.map((l) => `${indent}${l}`)].join("\n");
    })
    .join("\n");
}

/** How a command and its DOM look in the command list. */
function commandLabel(c: Command): string {
  const dom = COMMAND_SPECS[c].dom ?? "required";
  return dom === "none" ? c : dom === "optional" ? `${c} [DOM]` : `${c} DOM`;
}

export function usageText(): string {
  const commands = columns(COMMANDS.map((c) => [commandLabel(c), COMMAND_SPECS[c].summary]), 17);
  return `usage: fastsuspend COMMAND [DOM] [options]
       fastsuspend help [COMMAND]    (or: fastsuspend COMMAND --help)
       fastsuspend --version

commands:
${commands}

${DOM_HELP}
\`fastsuspend help COMMAND\` lists the options of each command.

${NOT_XL_PAUSE}

${EXIT_HELP}`;
}

export function commandHelp(command: Command): string {
  const spec = COMMAND_SPECS[command];
  const flags = Object.entries(spec.flags) as [Flag, string][];
  const options = columns([...flags.map(([f, text]): [string, string] => [flagLabel(f), text]), ["--help", "this text"]], 20);
  const takes = spec.dom ?? "required";
  const dom = takes === "none" ? [] : [...wrap(takes === "optional" ? `Without DOM, every domain; with it, that domain in detail. ${DOM_HELP}` : DOM_HELP, LINE_WIDTH), ""];
  const details = spec.details === undefined ? [] : ["", spec.details];
  return [`usage: fastsuspend ${spec.synopsis}`, "", spec.summary, ...details, "", ...dom, "options:", options, "", EXIT_HELP].join("\n");
}

// The CLI entry as a function: argv in, exit code out, everything else injected.
import { parseCli, USAGE, type CliArgs } from "./args";
import { cmdBenchRun } from "./bench-run";
import { cmdCheckpoint, cmdInfo, cmdResume, cmdSuspend } from "./commands";
import type { Deps, XenEnv } from "./context";
import { daemonCanServe, viaDaemon } from "./daemon-mode";
import { resolveDomainName } from "./domain-name";
import { errorLine, EXIT, exitCodeFor } from "./exit-codes";
import { commandHelp } from "./usage";
import { cliVersion } from "./version";

/** Xen and xenstore, opened on first use (a name to resolve, or a direct command) and closed once. */
class LazyEnv {
  #env: Promise<XenEnv> | undefined;
  constructor(private readonly open: () => Promise<XenEnv>) {}

  get(): Promise<XenEnv> {
    this.#env ??= this.open();
    return this.#env;
  }

  async close(): Promise<void> {
    const env = this.#env;
    this.#env = undefined;
    // One that failed to open has nothing to close (its error was reported where it was awaited).
    await (await env?.catch(() => undefined))?.close();
  }
}

/** DOM given as a name becomes its domid; the name is looked up the way xl does it. */
async function resolveDom(args: CliArgs, env: LazyEnv): Promise<CliArgs> {
  if (args.domName === undefined) return args;
  const { xen, xs } = await env.get();
  return { ...args, domid: await resolveDomainName(xen, xs, args.domName) };
}

/** help and --version: nothing opened, exit 0. Undefined for every other command. */
function helpOrVersion(args: CliArgs, deps: Deps): number | undefined {
  if (args.command === "version") deps.stdout(`fastsuspend ${cliVersion()}\n`);
  else if (args.command === "help") deps.stdout(`${args.helpFor === undefined ? USAGE : commandHelp(args.helpFor)}\n`);
  else return undefined;
  return EXIT.ok;
}

export async function run(argv: readonly string[], deps: Deps): Promise<number> {
  let parsed: CliArgs;
  try {
    parsed = parseCli(argv);
  } catch (err) {
    deps.stderr(`${errorLine(err)}\n`);
    deps.stderr("try `fastsuspend --help`\n");
    return exitCodeFor(err);
  }
  const early = helpOrVersion(parsed, deps);
  if (early !== undefined) return early;
  const env = new LazyEnv(deps.openEnv);
  try {
    const args = await resolveDom(parsed, env);
    if (daemonCanServe(args) && deps.connectDaemon !== undefined) {
      const client = await deps.connectDaemon();
      if (client !== undefined) {
        // Xen was opened only to resolve a name: the daemon does the work.
        await env.close();
        try {
          return await viaDaemon(client, args, deps);
        } finally {
          client.close();
        }
      }
    }
    if (args.command === "status") {
      deps.stderr("fastsuspend: status: fastsuspendd is not running (or --no-daemon); `fastsuspend info DOM` works without it\n");
      return EXIT.environment;
    }
    if (args.command === "metrics") {
      // A textfile left as it was goes stale: alert on node_textfile_mtime_seconds (docs/daemon.md).
      deps.stderr("fastsuspend: metrics: fastsuspendd is not running (or --no-daemon): the metrics are the daemon's\n");
      return EXIT.environment;
    }
    return await runDirect(await env.get(), args, deps);
  } catch (err) {
    deps.stderr(`${errorLine(err)}\n`);
    return exitCodeFor(err);
  } finally {
    await env.close();
  }
}

async function runDirect(env: XenEnv, args: CliArgs, deps: Deps): Promise<number> {
  switch (args.command) {
    case "info":
      return cmdInfo(env, args, deps);
    case "suspend":
      return cmdSuspend(env, args, deps);
    case "resume":
      return cmdResume(env, args, deps);
    case "checkpoint":
      return cmdCheckpoint(env, args, deps);
    case "bench-run":
      return cmdBenchRun(env, args, deps);
    default:
      return EXIT.usage;
  }
}

// The CLI entry as a function: argv in, exit code out, everything else injected.
import { normaliseJsonFlag, parseCli, USAGE, type CliArgs } from "./args";
import { cmdBenchRun } from "./bench-run";
import { cmdCheckpoint, cmdInfo, cmdResume, cmdSuspend } from "./commands";
import type { Deps, XenEnv } from "./context";
import { daemonCanServe, viaDaemon } from "./daemon-mode";
import { errorLine, EXIT, exitCodeFor } from "./exit-codes";

export async function run(argv: readonly string[], deps: Deps): Promise<number> {
  let args: CliArgs;
  try {
    args = parseCli(normaliseJsonFlag(argv));
  } catch (err) {
    deps.stderr(`${errorLine(err)}\n`);
    deps.stderr("try `fastsuspend --help`\n");
    return exitCodeFor(err);
  }
  if (args.command === "help") {
    deps.stdout(`${USAGE}\n`);
    return EXIT.ok;
  }
  if (daemonCanServe(args) && deps.connectDaemon !== undefined) {
    const client = await deps.connectDaemon();
    if (client !== undefined) {
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
  let env: XenEnv | undefined;
  try {
    env = await deps.openEnv();
    switch (args.command) {
      case "info":
        return await cmdInfo(env, args, deps);
      case "suspend":
        return await cmdSuspend(env, args, deps);
      case "resume":
        return await cmdResume(env, args, deps);
      case "checkpoint":
        return await cmdCheckpoint(env, args, deps);
      case "bench-run":
        return await cmdBenchRun(env, args, deps);
    }
    return EXIT.usage;
  } catch (err) {
    deps.stderr(`${errorLine(err)}\n`);
    return exitCodeFor(err);
  } finally {
    await env?.close();
  }
}

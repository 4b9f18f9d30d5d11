#!/usr/bin/env node
// `fastsuspend`: see USAGE in args.ts.
import { realDeps } from "./real-env";
import { run } from "./run";

/** How long the process may linger after its command finished before it is made to exit. */
const LINGER_MS = 2000;

void run(process.argv.slice(2), realDeps()).then((code) => {
  process.exitCode = code;
  // Normally every handle is closed by now and Node exits at once. If one was left open (an
  // `info` once printed its JSON and never exited), say which and exit anyway: a CLI that
  // hangs after its answer breaks every script that runs it.
  setTimeout(() => {
    const open = process.getActiveResourcesInfo().filter((r) => r !== "Timeout");
    process.stderr.write(`fastsuspend: warning: still open ${String(LINGER_MS)} ms after the command finished (${open.join(", ")}); exiting\n`);
    process.exit(code);
  }, LINGER_MS).unref();
});

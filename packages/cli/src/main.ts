#!/usr/bin/env node
// `fastsuspend`: see USAGE in args.ts.
import { realDeps } from "./real-env";
import { run } from "./run";

void run(process.argv.slice(2), realDeps()).then((code) => {
  process.exitCode = code;
});

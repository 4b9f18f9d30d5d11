#!/usr/bin/env node
// `npm run bench`: see BENCH_USAGE in args.ts.
import { errorLine, exitCodeFor } from "@fastsuspend/cli";

import { BENCH_USAGE, parseBenchHostArgs } from "./args";
import { benchOnLab } from "./bench";

async function main(argv: string[]): Promise<number> {
  if (argv.includes("--help")) {
    process.stdout.write(`${BENCH_USAGE}\n`);
    return 0;
  }
  try {
    return await benchOnLab({ ...parseBenchHostArgs(argv), log: (l) => process.stderr.write(`[bench] ${l}\n`) });
  } catch (err) {
    process.stderr.write(`${errorLine(err)}\n`);
    return exitCodeFor(err);
  }
}

void main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});

// `fastsuspend metrics`: fastsuspendd's Prometheus text, fetched over its socket, printed as it is
// or written for node_exporter's textfile collector.
import type { DaemonClient } from "@fastsuspend/daemon/client";

import type { CliArgs } from "./args";
import type { Deps } from "./context";
import { EXIT } from "./exit-codes";

/**
 * Families node_exporter exports under the same name itself (process_start_time_seconds): in its
 * textfile directory they would collide with its own, and the whole collector would fail
 * ("collected metric ... was collected before with the same name and label values").
 */
const TEXTFILE_EXCLUDED_PREFIX = "process_";

/** The exposition without the families whose names start with `prefix` (their HELP, TYPE and samples). */
export function withoutFamilies(text: string, prefix: string): string {
  const ofFamily = (line: string): boolean => line.startsWith(prefix) || line.startsWith(`# HELP ${prefix}`) || line.startsWith(`# TYPE ${prefix}`);
  return text
    .split("\n")
    .filter((line) => !ofFamily(line))
    .join("\n");
}

export async function cmdMetrics(c: DaemonClient, a: CliArgs, deps: Deps): Promise<number> {
  const text = await c.request("metrics");
  if (typeof text !== "string") throw new Error("fastsuspendd answered `metrics` with something other than the text format (a daemon older than this CLI?)");
  if (a.output === undefined) {
    deps.stdout(text);
    return EXIT.ok;
  }
  if (deps.writeFileAtomic === undefined) throw new Error("metrics --output: no way to write files here");
  try {
    deps.writeFileAtomic(a.output, withoutFamilies(text, TEXTFILE_EXCLUDED_PREFIX));
  } catch (err) {
    throw new Error(`metrics: cannot write ${a.output}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  return EXIT.ok;
}

// @fastsuspend/cli as a library: the runner, the table @fastsuspend/bench reuses, the JSON types.
export { run } from "./run";
export { BENCH_PATHS } from "./bench-run";
export { formatTable } from "./format";
export { parseCli, USAGE, COMMANDS, type CliArgs, type Command } from "./args";
export { EXIT, UsageError, EnvironmentError, exitCodeFor, errorLine, type ExitCode } from "./exit-codes";
export type { BenchResult, BenchPathResult, CheckpointLoopResult, GuestPhasesMs, ToolstackResult } from "./bench-result";
export type { Deps, XenEnv } from "./context";

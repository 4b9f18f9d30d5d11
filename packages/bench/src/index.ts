// @fastsuspend/bench: the host side of `npm run bench` (lab tooling, never in the dom0 package).
export { benchOnLab, type HostBenchOptions } from "./bench";
export { parseBenchHostArgs, BENCH_USAGE } from "./args";
export { latencyCdfSvg } from "./plot";

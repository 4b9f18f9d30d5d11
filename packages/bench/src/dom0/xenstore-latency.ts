// Read and watch-fire latency of a xenstore endpoint, for runs inside dom0:
//   node packages/bench/dist/dom0/xenstore-latency.js [--iterations N] [--prefix /path]
// Prints one JSON object; no assertions. Under TCG expect ±30% run to run,
// so compare configurations within one run. Lab tooling: it lives here, not in
// @fastsuspend/xenstore, so that the package ships no benchmark.
import { spawnSync } from "node:child_process";

import { XenstoreClient, type XenstoreWatch } from "@fastsuspend/xenstore";

import { summaryIn } from "./timing";

export interface LatencyStats {
  iterations: number;
  medianMs: number;
  p99Ms: number;
  minMs: number;
  maxMs: number;
}

/**
 * libxenstore's read latency, from the `xenstore-read` tool: one process reading the same node
 * 1 time and N times over one connection; (T(N) - T(1)) / (N - 1) is the cost of one more read
 * without the process start-up, which dominates a single `xenstore-read` under emulation.
 */
export interface LibxenstoreReadReport {
  tool: string;
  readsPerProcess: number;
  perReadMs: LatencyStats; // one estimate per repetition
  processMs: LatencyStats; // a whole `xenstore-read PATH` (start-up included)
}

export interface LatencyReport {
  endpoint: string | undefined;
  read: LatencyStats;
  watchFire: LatencyStats;
  libxenstoreRead?: LibxenstoreReadReport | { unavailable: string };
}

function stats(samples: number[]): LatencyStats {
  const s = summaryIn(samples, 1, 3);
  return { iterations: s.n, medianMs: s.median, p99Ms: s.p99, minMs: s.min, maxMs: s.max };
}

const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;

async function nextPath(watch: XenstoreWatch, path: string): Promise<void> {
  for (;;) {
    const result = await watch.next();
    if (result.done === true) throw new Error("watch ended");
    if (result.value.path === path) return;
  }
}

function timedRun(tool: string, args: string[]): number {
  const start = nowMs();
  const r = spawnSync(tool, args, { stdio: ["ignore", "ignore", "pipe"], timeout: 60_000 });
  const ms = nowMs() - start;
  if (r.error !== undefined) throw r.error;
  if (r.status !== 0) throw new Error(`${tool} exited ${String(r.status)}: ${r.stderr.toString().trim()}`);
  return ms;
}

/** Measures libxenstore (through `xenstore-read`) reading `path`, for comparison with our client. */
export function measureLibxenstoreRead(path: string, repetitions = 10, readsPerProcess = 200, tool = "xenstore-read"): LibxenstoreReadReport | { unavailable: string } {
  const perRead: number[] = [];
  const process1: number[] = [];
  try {
    for (let i = 0; i < repetitions; i += 1) {
      const one = timedRun(tool, [path]);
      const many = timedRun(tool, Array<string>(readsPerProcess).fill(path));
      process1.push(one);
      perRead.push(Math.max(0, (many - one) / (readsPerProcess - 1)));
    }
  } catch (err) {
    return { unavailable: err instanceof Error ? err.message : String(err) };
  }
  return { tool, readsPerProcess, perReadMs: stats(perRead), processMs: stats(process1) };
}

/** Measures `iterations` reads and write→watch-event round trips under `prefix` (created and removed). */
export async function measureLatency(
  client: XenstoreClient,
  iterations = 1000,
  prefix = `/fastsuspend-bench-${process.pid}`,
): Promise<LatencyReport> {
  await client.write(`${prefix}/read`, "0123456789");
  await client.mkdir(`${prefix}/watched`);
  try {
    const reads: number[] = [];
    for (let i = 0; i < iterations; i += 1) {
      const start = nowMs();
      await client.read(`${prefix}/read`);
      reads.push(nowMs() - start);
    }

    const fires: number[] = [];
    const watch = await client.watch(`${prefix}/watched`, { initialFire: "swallow" });
    try {
      const target = `${prefix}/watched/v`;
      for (let i = 0; i < iterations; i += 1) {
        const start = nowMs();
        const fired = nextPath(watch, target);
        await client.write(target, String(i));
        await fired;
        fires.push(nowMs() - start);
      }
    } finally {
      await watch.return();
    }
    const libxenstoreRead = measureLibxenstoreRead(`${prefix}/read`);
    return { endpoint: client.endpoint, read: stats(reads), watchFire: stats(fires), libxenstoreRead };
  } finally {
    await client.rm(prefix).catch(() => undefined);
  }
}

function argValue(args: readonly string[], name: string): string | undefined {
  const index = args.indexOf(name);
  return index === -1 ? undefined : args[index + 1];
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const iterations = Number(argValue(args, "--iterations") ?? "1000");
  if (!Number.isInteger(iterations) || iterations <= 0) throw new Error("--iterations must be a positive integer");
  const client = await XenstoreClient.connect();
  try {
    const report = await measureLatency(client, iterations, argValue(args, "--prefix"));
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } finally {
    await client.close();
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}

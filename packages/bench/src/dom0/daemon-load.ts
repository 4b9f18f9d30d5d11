#!/usr/bin/env node
// Load on fastsuspendd: a checkpoint loop of COUNT cycles alone, then the same loop while CLIENTS
// connections poll status and metrics back to back. Prints requests/s and the checkpoint p99 of both
// runs (each from its own loop's summary; the domain's rolling window would mix the two). The loop
// runs on a `checkpoint` request, which answers when it ends: no status polling of our own.
//   node packages/bench/dist/dom0/daemon-load.js --domid D [--clients 16] [--count 100] [--interval 100] [--socket PATH] [--json]
// Lab tooling: it talks to the daemon through its client alone, and is not in the dom0 package.
import { parseArgs } from "node:util";

import { summarize, type Summary } from "@fastsuspend/coordinator";
import { DaemonClient, defaultSocketPath } from "@fastsuspend/daemon/client";

interface RunResult {
  clients: number;
  cycles: number;
  failed: number;
  seconds: number;
  requests: number;
  requestsPerSecond: number;
  requestMs: Summary;
  cycleMs: Summary;
  suspendMs: Summary;
}

async function runLoop(ctl: DaemonClient, domid: number, count: number, intervalMs: number, clients: DaemonClient[]): Promise<RunResult> {
  let stop = false;
  let requests = 0;
  const lat: number[] = [];
  const pollers = clients.map(async (c, i) => {
    for (let k = 0; !stop; k++) {
      const t0 = process.hrtime.bigint();
      if ((i + k) % 2 === 0) await c.request("status", { domid });
      else await c.request("metrics");
      lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
      requests++;
    }
  });
  const t0 = Date.now();
  const { loop } = await ctl.checkpoint({ domid, intervalMs, count });
  const seconds = (Date.now() - t0) / 1000;
  stop = true;
  await Promise.all(pollers);
  return {
    clients: clients.length,
    cycles: loop.ok,
    failed: loop.failed,
    seconds,
    requests,
    requestsPerSecond: requests / seconds,
    requestMs: summarize(lat),
    cycleMs: loop.cycleMs,
    suspendMs: loop.suspendMs,
  };
}

async function main(): Promise<void> {
  const { values: v } = parseArgs({
    options: {
      domid: { type: "string" },
      clients: { type: "string", default: "16" },
      count: { type: "string", default: "100" },
      interval: { type: "string", default: "100" },
      socket: { type: "string" },
      json: { type: "boolean" },
    },
  });
  if (v.domid === undefined) throw new Error("--domid D is required");
  const domid = Number(v.domid);
  const n = Number(v.clients);
  const count = Number(v.count);
  const interval = Number(v.interval);
  const socketPath = v.socket ?? defaultSocketPath();
  const ctl = await DaemonClient.connect({ socketPath, timeoutMs: 120_000 });
  const quiet = await runLoop(ctl, domid, count, interval, []);
  const cs = await Promise.all(Array.from({ length: n }, () => DaemonClient.connect({ socketPath, timeoutMs: 120_000 })));
  const loaded = await runLoop(ctl, domid, count, interval, cs);
  for (const c of cs) c.close();
  ctl.close();
  const result = { domid, count, intervalMs: interval, quiet, loaded };
  if (v.json === true) {
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return;
  }
  const f = (x: number): string => x.toFixed(2);
  for (const [name, r] of [["no load", quiet], [`${n} clients`, loaded]] as const) {
    process.stdout.write(
      `${name}: ${r.cycles} cycles (${r.failed} failed) in ${f(r.seconds)} s; cycle median ${f(r.cycleMs.median)} ms p99 ${f(r.cycleMs.p99)} ms; ` +
        `suspend median ${f(r.suspendMs.median)} ms p99 ${f(r.suspendMs.p99)} ms; ${r.requests} requests, ${f(r.requestsPerSecond)}/s (request p99 ${f(r.requestMs.p99)} ms)\n`,
    );
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`load: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});

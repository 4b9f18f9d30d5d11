#!/usr/bin/env node
// Micro-benchmarks for the sync/async choice, printed as JSON (microseconds).
//
//   node packages/bench/dist/dom0/xen-native.js [--iterations N] [--warmup N] [--fake]
//
// Always (needs only the built addon): a bare addon call, an AsyncWorker round trip (what
// resumeAsync pays on top of xc_domain_resume), and a setImmediate hop for scale.
// In a dom0 (or with --fake, to check the script): notify -> poll event round trip between two dom0
// ports on two handles, a non-blocking pending() probe, and getInfo(0).
// Lab tooling: it lives here, not in @fastsuspend/xen, so that the package ships no benchmark.
import { addonBuilt, isXenError, loadAddon, openXen, type XenBinding } from "@fastsuspend/xen";
import { FakeXen } from "@fastsuspend/xen/testing";

import { summaryIn, timeAsync, timeSync, type MicroSummary } from "./timing";

/** Microseconds, as printed before the move (medianUs, p99Us, ...). */
interface Summary {
  n: number;
  medianUs: number;
  p99Us: number;
  minUs: number;
  maxUs: number;
  meanUs: number;
}

/** Samples in ns, summarised in us. */
function summarize(samplesNs: number[]): Summary {
  const s: MicroSummary = summaryIn(samplesNs, 1000, 2);
  return { n: s.n, medianUs: s.median, p99Us: s.p99, minUs: s.min, maxUs: s.max, meanUs: s.mean };
}

function argInt(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? Number(process.argv[i + 1]) : dflt;
  if (!Number.isInteger(v) || v <= 0) throw new Error(`${name} needs a positive integer`);
  return v;
}

async function benchXen(xen: XenBinding, iterations: number, warmup: number): Promise<Record<string, Summary>> {
  const a = xen.openEvtchn();
  const b = xen.openEvtchn();
  const probe = xen.openEvtchn({ poll: false });
  try {
    const pa = a.bindUnboundPort(0);
    const pb = b.bindInterdomain(0, pa);
    await b.wait(pb, { timeoutMs: 5000 }); // the bind-time event
    b.unmask(pb);
    const roundTrip = await timeAsync(iterations, warmup, async () => {
      const seen = a.wait(pa, { timeoutMs: 5000 });
      b.notify(pb);
      await seen;
      a.unmask(pa);
    });
    const notify = timeSync(iterations, warmup, () => {
      b.notify(pb); // coalesces into a's pending bit: cost of the ioctl only
    });
    await a.wait(pa, { timeoutMs: 5000 }).catch(() => undefined);
    a.unmask(pa);
    probe.bindUnboundPort(0);
    const pending = timeSync(iterations, warmup, () => {
      probe.pending(); // poll(fd, 0) + nothing to read
    });
    const getInfo = timeSync(iterations, warmup, () => {
      xen.getInfo(0);
    });
    return {
      notifyToEventRoundTrip: summarize(roundTrip),
      notifyIoctl: summarize(notify),
      pendingEmptyProbe: summarize(pending),
      getInfo: summarize(getInfo),
    };
  } finally {
    a.close();
    b.close();
    probe.close();
  }
}

async function main(): Promise<void> {
  const iterations = argInt("--iterations", 2000);
  const warmup = argInt("--warmup", 200);
  const useFake = process.argv.includes("--fake");
  const results: Record<string, Summary> = {};
  const out: Record<string, unknown> = { node: process.version, iterations, warmup, results };

  results.setImmediateHop = summarize(
    await timeAsync(iterations, warmup, () => new Promise<void>((r) => setImmediate(r))),
  );
  if (addonBuilt()) {
    const addon = loadAddon();
    results.addonCall = summarize(timeSync(iterations, warmup, () => { addon.noop(); }));
    results.asyncWorkerHop = summarize(await timeAsync(iterations, warmup, () => addon.noopAsync()));
  } else {
    out.addon = "not built";
  }

  let xen: XenBinding | undefined;
  try {
    xen = useFake ? new FakeXen().binding() : openXen();
    out.binding = xen.kind;
  } catch (err) {
    out.xen = isXenError(err) ? err.message : String(err);
  }
  if (xen !== undefined) {
    try {
      Object.assign(results, await benchXen(xen, iterations, warmup));
    } finally {
      xen.close();
    }
  }
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});

import { FakeXenstored } from "@fastsuspend/xenstore/testing";
import { measureLatency, measureLibxenstoreRead } from "./xenstore-latency";

// Only checks that the benchmark runs and cleans up; the numbers mean nothing here.
it("measures read and watch-fire latency against the fake", async () => {
  const fake = await FakeXenstored.start();
  const client = await fake.connect();
  try {
    const report = await measureLatency(client, 20, "/bench");
    expect(report.read.iterations).toBe(20);
    expect(report.watchFire.iterations).toBe(20);
    expect(report.read.medianMs).toBeGreaterThanOrEqual(0);
    expect(await client.tryRead("/bench")).toBeUndefined();
  } finally {
    await client.close();
    await fake.stop();
  }
});

it("estimates libxenstore's per-read cost from one and many reads per process, or says why not", () => {
  // `true` stands in for xenstore-read: it accepts any arguments and exits 0.
  const ok = measureLibxenstoreRead("/p", 3, 50, "true");
  expect(ok).toMatchObject({ tool: "true", readsPerProcess: 50, perReadMs: { iterations: 3 }, processMs: { iterations: 3 } });
  expect(measureLibxenstoreRead("/p", 3, 50, "false")).toEqual({ unavailable: "false exited 1: " });
  expect(measureLibxenstoreRead("/p", 3, 50, "/nonexistent/xenstore-read")).toHaveProperty("unavailable", expect.stringContaining("ENOENT"));
});

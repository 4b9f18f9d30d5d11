import { FakeXenstored } from "../testing/fake-xenstored";
import { measureLatency } from "./latency";

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

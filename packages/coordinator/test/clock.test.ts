// The one abortable sleep (the coordinator's notifiers and the daemon's loop gaps use it).
import { getEventListeners } from "node:events";

import { sleep } from "../src";

it("sleeps, ends early when its signal aborts, and at once when it already has", async () => {
  const t0 = Date.now();
  await sleep(30);
  expect(Date.now() - t0).toBeGreaterThanOrEqual(25);
  const stop = new AbortController();
  const t1 = Date.now();
  setTimeout(() => { stop.abort(); }, 10);
  await sleep(10_000, stop.signal);
  expect(Date.now() - t1).toBeLessThan(1000);
  const t2 = Date.now();
  await sleep(10_000, stop.signal);
  expect(Date.now() - t2).toBeLessThan(50);
});

it("leaves no timer or abort listener behind", async () => {
  const stop = new AbortController();
  await sleep(5, stop.signal);
  expect(getEventListeners(stop.signal, "abort")).toHaveLength(0);
  const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
  const before = timers();
  const p = sleep(10_000, stop.signal);
  expect(getEventListeners(stop.signal, "abort")).toHaveLength(1);
  stop.abort();
  await p;
  expect(timers()).toBe(before);
  expect(getEventListeners(stop.signal, "abort")).toHaveLength(0);
});

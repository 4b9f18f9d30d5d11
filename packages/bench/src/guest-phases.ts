// The guest's own suspend times for the bench table: the lab's phases probe gives one record per
// suspend (guest clock); this turns a path's worth into the summaries bench JSON carries.
import { summarize, type Summary } from "@fastsuspend/coordinator";
import type { GuestPhasesMs } from "@fastsuspend/cli";
import type { GuestSuspend } from "@fastsuspend/lab";

/** undefined when the guest traced no suspend (a kernel without patch 0005, or the probe off). */
export function summarizeGuestPhases(all: readonly GuestSuspend[]): GuestPhasesMs | undefined {
  if (all.length === 0) return undefined;
  // A suspend during which the guest's clock stepped back has no usable times: counted, not summarised.
  const suspends = all.filter((s) => !s.clockSteppedBack);
  const names = [...new Set(suspends.flatMap((s) => Object.keys(s.steps)))];
  const steps: Record<string, Summary> = {};
  // A step a suspend did not take (e.g. an error path) is left out of that step's summary.
  for (const k of names) steps[k] = summarize(suspends.flatMap((s) => (s.steps[k] === undefined ? [] : [s.steps[k]])));
  const requests = suspends.flatMap((s) => (s.requestMs === undefined ? [] : [s.requestMs]));
  return {
    n: suspends.length,
    ...(suspends.length < all.length ? { clockSteppedBack: all.length - suspends.length } : {}),
    suspend: summarize(suspends.map((s) => s.suspendMs)),
    resume: summarize(suspends.map((s) => s.resumeMs)),
    ...(requests.length > 0 ? { request: summarize(requests) } : {}),
    steps,
  };
}

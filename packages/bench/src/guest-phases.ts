// The guest's own suspend times for the bench table: the lab's phases probe gives one record per
// suspend (guest clock); this turns a path's worth into the summaries bench JSON carries.
import { summarize } from "@fastsuspend/coordinator";
import type { GuestPhasesMs } from "@fastsuspend/cli";
import { summarizeGuestSuspends, type GuestSuspend } from "@fastsuspend/lab";

/** undefined when the guest traced no suspend (a kernel without patch 0005, or the probe off). */
export function summarizeGuestPhases(all: readonly GuestSuspend[]): GuestPhasesMs | undefined {
  return summarizeGuestSuspends(all, summarize);
}

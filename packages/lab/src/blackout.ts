// The guest's blackout probe (assets/guest-blackout.c), read from dom0 (guest-probe.ts: a token
// written to the guest's data/blackout/request, the block it prints on its console), parsed. Asking clears the probe's
// gap table and its "window" histogram, so each call reports what happened since the previous one.
import { LabError } from "./errors";
import { askGuestProbe, probeFields as fields } from "./guest-probe";
import type { Lab } from "./lab";

export interface BlackoutGap {
  /** The guest's CLOCK_BOOTTIME (ms since its boot) at the last clock read before the gap. */
  atBootMs: number;
  /** The guest's CLOCK_REALTIME (ms since the epoch) at that read: comparable with dom0's clock. */
  atRealMs: number;
  /** The whole interval between two clock reads on CLOCK_BOOTTIME (the probe's sleep included). */
  bootMs: number;
  /** The same interval on CLOCK_MONOTONIC: misses what timekeeping_suspend/resume skipped. */
  monoMs: number;
}

/** Distribution of the excess over the probe's sleep, per interval (us; upper edges of 10 us buckets). */
export interface BlackoutHist {
  fromMs: number;
  toMs: number;
  samples: number;
  p50Us: number;
  p90Us: number;
  p99Us: number;
  p999Us: number;
  maxUs: number;
  /** Intervals over the threshold (each is also a gap, unless the table was full). */
  over: number;
}

export interface BlackoutReport {
  req: string;
  seq: number;
  clocksource: string;
  sleepUs: number;
  thresholdUs: number;
  floorS: number;
  nowBootMs: number;
  gaps: BlackoutGap[];
  /** Gaps that did not fit in the probe's table (4096). */
  dropped: number;
  /** The first floorS seconds after the probe started (no suspends expected then); fixed. */
  floor: BlackoutHist;
  /** Every interval since the previous request (or the probe's start). */
  window: BlackoutHist;
}

function num(m: Map<string, string>, k: string, line: string): number {
  const v = Number(m.get(k));
  if (m.get(k) === undefined || !Number.isFinite(v)) throw new LabError(`blackout probe: no number ${k} in ${JSON.stringify(line)}`, "the console log may be garbled; ask again");
  return v;
}

function hist(line: string): BlackoutHist {
  const m = fields(line);
  return {
    fromMs: num(m, "from_ms", line), toMs: num(m, "to_ms", line), samples: num(m, "samples", line),
    p50Us: num(m, "p50_us", line), p90Us: num(m, "p90_us", line), p99Us: num(m, "p99_us", line),
    p999Us: num(m, "p999_us", line), maxUs: num(m, "max_us", line), over: num(m, "over", line),
  };
}

/**
 * Parses the probe's block for `req` out of a console log (the last one when `req` is not given);
 * undefined while that block is not complete. Lines other than the probe's inside the block (the
 * kernel may print there) are skipped; the gap count is checked against the END line.
 */
export function parseBlackout(text: string, req?: string): BlackoutReport | undefined {
  const lines = text.replace(/\r/g, "").split("\n").map((l) => {
    const i = l.indexOf("BLACKOUT-"); // a line may start with another writer's unterminated output
    return i >= 0 ? l.slice(i) : l;
  });
  let begin = -1;
  for (let i = lines.length - 1; i >= 0; i--) {
    const l = lines[i] ?? "";
    if (l.startsWith("BLACKOUT-BEGIN ") && (req === undefined || fields(l).get("req") === req)) {
      begin = i;
      break;
    }
  }
  if (begin < 0) return undefined;
  const head = lines[begin] ?? "";
  const h = fields(head);
  const r: Omit<BlackoutReport, "floor" | "window"> = {
    req: h.get("req") ?? "", seq: num(h, "seq", head), clocksource: h.get("clocksource") ?? "unknown",
    sleepUs: num(h, "sleep_us", head), thresholdUs: num(h, "threshold_us", head), floorS: num(h, "floor_s", head),
    nowBootMs: num(h, "now_boot_ms", head), dropped: num(h, "dropped", head), gaps: [],
  };
  let floor: BlackoutHist | undefined;
  let window: BlackoutHist | undefined;
  for (const l of lines.slice(begin + 1)) {
    if (l.startsWith("BLACKOUT-GAP ")) {
      const g = fields(l);
      r.gaps.push({ atBootMs: num(g, "at_boot_ms", l), atRealMs: num(g, "at_real_ms", l), bootMs: num(g, "boot_ms", l), monoMs: num(g, "mono_ms", l) });
    } else if (l.startsWith("BLACKOUT-HIST ")) {
      const name = fields(l).get("name");
      if (name === "floor") floor = hist(l);
      else if (name === "window") window = hist(l);
    } else if (l.startsWith("BLACKOUT-END ")) {
      const e = fields(l);
      if (e.get("req") !== r.req || num(e, "seq", l) !== r.seq) continue;
      const count = num(e, "count", l);
      if (count !== r.gaps.length || !floor || !window) {
        throw new LabError(`blackout probe: block seq=${r.seq} has ${r.gaps.length} gap lines for count=${count}${floor && window ? "" : ", histograms missing"}`, "console output was lost or interleaved; ask again");
      }
      return { ...r, floor, window };
    } else if (l.startsWith("BLACKOUT-BEGIN ")) {
      return undefined; // a new block began before this one ended: it was cut off
    }
  }
  return undefined;
}

export interface BlackoutOptions {
  /** How long to wait for the probe's block (default 30 s: the console is slow under TCG). */
  timeoutMs?: number;
}

/**
 * Asks a running guest's probe for its results (gaps since the previous request, the floor and the
 * window histograms) and returns them. `guest` is a domain name or id.
 */
export async function blackout(lab: Lab, guest: string | number, opts: BlackoutOptions = {}): Promise<BlackoutReport> {
  return askGuestProbe(lab, guest, {
    node: "data/blackout/request", tag: "BLACKOUT", timeoutMs: opts.timeoutMs ?? 30_000,
    hint: "is the guest running an initramfs with /bin/blackout (lab artefacts rebuilt) and booted with fastsuspend.blackout=on?",
    parse: parseBlackout,
  });
}

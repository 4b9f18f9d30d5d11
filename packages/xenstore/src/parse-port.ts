// Values in xenstore are written by guests: a port number is untrusted text.
// These parsers accept only canonical decimal (no sign, no spaces, no leading
// zeros, no trailing NUL) and return undefined instead of NaN or a clamped value.

/**
 * Event channel ports are below 2^17 with the FIFO ABI (EVTCHN_FIFO_NR_CHANNELS)
 * and below 4096 with 2-level on 64-bit; 2^17 - 1 bounds both. Port 0 is never a
 * usable channel (binding it gives EINVAL), so it counts as "no channel".
 */
export const EVTCHN_PORT_MAX = (1 << 17) - 1;

/** Strict canonical unsigned decimal in [min, max]; undefined otherwise. */
export function parseStrictDecimal(text: string, min: number, max: number): number | undefined {
  // 15 digits stays well inside Number's exact-integer range.
  if (!/^(0|[1-9][0-9]{0,14})$/.test(text)) return undefined;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < min || value > max) return undefined;
  return value;
}

/** Parses an event-channel port as found in e.g. device/suspend/event-channel. "" -> undefined. */
export function parsePort(value: string | Buffer): number | undefined {
  const text = typeof value === "string" ? value : value.toString("latin1");
  return parseStrictDecimal(text, 1, EVTCHN_PORT_MAX);
}

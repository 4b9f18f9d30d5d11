// The guest's data writer (assets/guest-writer.c): its status, asked for through guest-probe.ts,
// and the check of what reached the disk: every record it was told was written must be there,
// intact. An application's view of a suspend: no lost or corrupted write, and how long a write
// could take.
import { LabError } from "./errors";
import { askGuestProbe, probeFields as fields } from "./guest-probe";
import type { Lab } from "./lab";

export const WRITER_RECORD_BYTES = 512;
const MAGIC = "FSREC001";

export interface WriterStatus {
  /** Records whose write returned: 0 .. acked-1 must be on the disk. */
  acked: number;
  errors: number;
  lastErrno: number;
  /** The longest a single O_DSYNC write took since the writer started. */
  maxWriteMs: number;
  /** Writes that took over 100 ms. */
  slow: number;
  full: boolean;
  sizeBytes: number;
}

export function parseWriterStatus(block: string): WriterStatus {
  const line = block.replace(/\r/g, "").split("\n").map((l) => l.slice(Math.max(0, l.indexOf("WRITER-STATUS ")))).find((l) => l.startsWith("WRITER-STATUS "));
  if (line === undefined) throw new LabError("writer: no WRITER-STATUS line in its answer", "see the console output below", block.slice(-2000));
  const m = fields(line);
  const num = (k: string): number => {
    const v = Number(m.get(k));
    if (m.get(k) === undefined || !Number.isFinite(v)) throw new LabError(`writer: no number ${k} in ${JSON.stringify(line)}`, "the console log may be garbled; ask again");
    return v;
  };
  return { acked: num("acked"), errors: num("errors"), lastErrno: num("last_errno"), maxWriteMs: num("max_write_ms"), slow: num("slow"), full: num("full") === 1, sizeBytes: num("size") };
}

/** The writer's status in `guest` (a domain name or id). */
export async function writerStatus(lab: Lab, guest: string | number, opts: { timeoutMs?: number } = {}): Promise<WriterStatus> {
  return askGuestProbe(lab, guest, {
    node: "data/writer/request", tag: "WRITER", timeoutMs: opts.timeoutMs ?? 30_000,
    hint: "was the guest booted with fastsuspend.writer=on, from an initramfs with /bin/writer (lab artefacts rebuilt)?",
    parse: parseWriterStatus,
  });
}

function fnv1a(b: Uint8Array, from: number, to: number): number {
  let h = 2166136261;
  for (let i = from; i < to; i++) {
    h ^= b[i] ?? 0;
    h = Math.imul(h, 16777619) >>> 0;
  }
  return h >>> 0;
}

/** Why record `seq` of `disk` is not the one the writer wrote, or undefined if it is. */
export function badRecord(disk: Buffer, seq: number): string | undefined {
  const off = seq * WRITER_RECORD_BYTES;
  if (off + WRITER_RECORD_BYTES > disk.length) return "beyond the end of the disk";
  const r = disk.subarray(off, off + WRITER_RECORD_BYTES);
  if (r.subarray(0, 8).toString("latin1") !== MAGIC) return r.every((x) => x === 0) ? "missing (zeros)" : "no magic";
  if (r.readBigUInt64LE(8) !== BigInt(seq)) return `holds record ${r.readBigUInt64LE(8)}`;
  if (r.readUInt32LE(504) !== fnv1a(r, 0, 504)) return "checksum mismatch";
  for (let k = 24; k < 504; k++) if (r[k] !== ((seq * 31 + k) & 0xff)) return `filler byte ${k} wrong`;
  return undefined;
}

/** Checks records 0 .. acked-1; returns the bad ones (seq and why), at most `limit`. */
export function verifyRecords(disk: Buffer, acked: number, limit = 20): { seq: number; why: string }[] {
  const bad: { seq: number; why: string }[] = [];
  for (let seq = 0; seq < acked && bad.length < limit; seq++) {
    const why = badRecord(disk, seq);
    if (why !== undefined) bad.push({ seq, why });
  }
  return bad;
}

// The daemon's state files in its run directory (journal.json, loops.json): read once at start,
// written whole and atomically (a tmp file renamed over it), so that a crash while writing leaves
// the previous version.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

import { errorText } from "@fastsuspend/coordinator";

/** What a previous run left: nothing (no file), the parsed JSON, or why it could not be had. */
export type RunFileRead = { absent: true } | { json: unknown } | { readError: string } | { parseError: string };

export function readRunFile(path: string): RunFileRead {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { absent: true };
    return { readError: errorText(err) };
  }
  try {
    return { json: JSON.parse(text) as unknown };
  } catch (err) {
    return { parseError: errorText(err) };
  }
}

export function writeRunFile(path: string, body: unknown): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(body)}\n`, { mode: 0o600 });
  renameSync(tmp, path);
}

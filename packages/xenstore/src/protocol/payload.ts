// Payload encodings from docs/misc/xenstore.txt: most arguments are strings
// each followed by a NUL; WRITE's value is raw bytes with no terminator;
// replies such as DIRECTORY and GET_PERMS are NUL-terminated string lists.

const NUL = Buffer.from([0]);

/** "a\0b\0": each string followed by a NUL (the `<foo>|` notation). */
export function nulTerminated(...parts: string[]): Buffer {
  const pieces: Buffer[] = [];
  for (const part of parts) {
    pieces.push(Buffer.from(part, "utf8"), NUL);
  }
  return Buffer.concat(pieces);
}

/**
 * Splits a list reply "a\0b\0" into ["a", "b"]. An empty payload is an empty
 * list (cxenstored sends nothing for a node without children); a missing final
 * NUL is tolerated, since some servers strip it.
 */
export function splitNulList(payload: Buffer): string[] {
  if (payload.length === 0) return [];
  const text = payload.toString("utf8");
  const parts = text.split("\0");
  if (parts[parts.length - 1] === "") parts.pop();
  return parts;
}

/** The first NUL-terminated string of a reply ("OK\0", "ENOENT\0", "/local/domain/0\0"). */
export function firstString(payload: Buffer): string {
  const end = payload.indexOf(0);
  return payload.toString("utf8", 0, end === -1 ? payload.length : end);
}

/** Any string that is to go on the wire as `<foo>|` must not contain a NUL itself. */
export function containsNul(text: string): boolean {
  return text.includes("\0");
}

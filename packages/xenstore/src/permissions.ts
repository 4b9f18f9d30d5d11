import { XenstoreProtocolError, XenstoreInvalidArgumentError } from "./errors";

// Node permissions as xenstored speaks them: "<letter><domid>" where the
// letter is n(one), r(ead), w(rite) or b(oth). The FIRST entry names the owner
// (full access) and, through its letter, what every other domain gets unless
// a later entry names that domain explicitly.

export type PermissionAccess = "none" | "read" | "write" | "both";

export interface Permission {
  domid: number;
  access: PermissionAccess;
}

const LETTER_BY_ACCESS: Record<PermissionAccess, string> = { none: "n", read: "r", write: "w", both: "b" };
const ACCESS_BY_LETTER: Record<string, PermissionAccess | undefined> = { n: "none", r: "read", w: "write", b: "both" };

/** Highest domid xenstore accepts (DOMID_FIRST_RESERVED is 0x7FF0, but specials like DOMID_SELF exist up to 0xFFFF). */
const DOMID_MAX = 0xffff;

function checkDomid(domid: number): void {
  if (!Number.isInteger(domid) || domid < 0 || domid > DOMID_MAX) {
    throw new XenstoreInvalidArgumentError(`invalid domid ${String(domid)}`);
  }
}

/** {domid: 3, access: "read"} -> "r3" */
export function formatPermission(perm: Permission): string {
  checkDomid(perm.domid);
  return `${LETTER_BY_ACCESS[perm.access]}${perm.domid}`;
}

/** "r3" -> {domid: 3, access: "read"}; undefined for anything malformed (never NaN). */
export function parsePermission(text: string): Permission | undefined {
  const access = ACCESS_BY_LETTER[text.charAt(0)];
  const digits = text.slice(1);
  if (access === undefined || !/^(0|[1-9][0-9]{0,4})$/.test(digits)) return undefined;
  const domid = Number(digits);
  if (domid > DOMID_MAX) return undefined;
  return { domid, access };
}

/** Parses a GET_PERMS reply list; the daemon's reply is input like any other, so it is checked. */
export function parsePermissionList(entries: readonly string[], path: string): Permission[] {
  if (entries.length === 0) throw new XenstoreProtocolError(`xenstore get_perms ${path}: empty permission list`);
  return entries.map((entry) => {
    const perm = parsePermission(entry);
    if (perm === undefined) {
      throw new XenstoreProtocolError(`xenstore get_perms ${path}: malformed permission ${JSON.stringify(entry)}`);
    }
    return perm;
  });
}

export function validatePermissionList(perms: readonly Permission[]): void {
  if (perms.length === 0) throw new XenstoreInvalidArgumentError("a permission list needs at least the owner entry");
  for (const perm of perms) checkDomid(perm.domid);
}

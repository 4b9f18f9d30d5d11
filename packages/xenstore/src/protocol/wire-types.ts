// Message types of the xenstore wire protocol, numbered as in Xen's
// xen/include/public/io/xs_wire.h (enum xsd_sockmsg_type). The numbers are ABI.

export const XsType = {
  CONTROL: 0, // formerly XS_DEBUG
  DIRECTORY: 1,
  READ: 2,
  GET_PERMS: 3,
  WATCH: 4,
  UNWATCH: 5,
  TRANSACTION_START: 6,
  TRANSACTION_END: 7,
  INTRODUCE: 8,
  RELEASE: 9,
  GET_DOMAIN_PATH: 10,
  WRITE: 11,
  MKDIR: 12,
  RM: 13,
  SET_PERMS: 14,
  WATCH_EVENT: 15,
  ERROR: 16,
  IS_DOMAIN_INTRODUCED: 17,
  RESUME: 18,
  SET_TARGET: 19,
  RESET_WATCHES: 21,
  DIRECTORY_PART: 22,
} as const;

export type XsTypeName = keyof typeof XsType;
export type XsTypeNumber = (typeof XsType)[XsTypeName];

const namesByNumber = new Map<number, XsTypeName>(
  (Object.keys(XsType) as XsTypeName[]).map((name) => [XsType[name], name]),
);

/** The name of a wire type, for messages and logs ("UNKNOWN(99)" for anything else). */
export function xsTypeName(type: number): string {
  return namesByNumber.get(type) ?? `UNKNOWN(${type})`;
}

// Limits from xs_wire.h. Exceeding XENSTORE_PAYLOAD_MAX makes xenstored kill
// the connection outright, so the client checks it before sending anything.

/** struct xsd_sockmsg: type, req_id, tx_id, len; four little-endian u32. */
export const HEADER_SIZE = 16;

/** XENSTORE_PAYLOAD_MAX: the bound on `len`, in both directions. */
export const PAYLOAD_MAX = 4096;

/** XENSTORE_ABS_PATH_MAX: longer absolute paths are refused by xenstored. */
export const ABS_PATH_MAX = 3072;

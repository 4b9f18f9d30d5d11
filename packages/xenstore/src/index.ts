// @fastsuspend/xenstore: a pure TypeScript client of the xenstore wire protocol.
// Test helpers (fake xenstored, contract suite) live in "@fastsuspend/xenstore/testing".

export { XenstoreClient, type Client, type XenstoreClientOptions } from "./client/client";
export { XenstoreOperations, type RequestOptions, type XenstoreValue } from "./client/operations";
export { XenstoreTransaction, type TransactionOptions } from "./client/transaction";
export { XenstoreWatch, type WatchEvent, type WatchOptions, type InitialFirePolicy } from "./client/watch";
export {
  KNOWN_ERRNOS,
  isXenstoreErrno,
  XenstoreBaseError,
  XenstoreClosedError,
  XenstoreConnectError,
  XenstoreError,
  XenstoreInvalidArgumentError,
  XenstorePayloadTooLargeError,
  XenstoreProtocolError,
  XenstoreTimeoutError,
  XenstoreTransactionConflictError,
  type KnownErrno,
  type XenstoreErrno,
} from "./errors";
export { parsePort, parseStrictDecimal, EVTCHN_PORT_MAX } from "./parse-port";
export {
  formatPermission,
  parsePermission,
  type Permission,
  type PermissionAccess,
} from "./permissions";
export { encodeFrame, FrameDecoder, FrameTooLargeError, type Frame } from "./protocol/frame";
export { HEADER_SIZE, PAYLOAD_MAX, ABS_PATH_MAX } from "./protocol/limits";
export { XsType, xsTypeName, type XsTypeName } from "./protocol/wire-types";
export type { Transport, TransportEvents, TransportFactory } from "./transport/transport";
export { UnixSocketTransport, unixSocketTransport } from "./transport/unix-socket-transport";
export { XenbusDeviceTransport, xenbusDeviceTransport } from "./transport/xenbus-device-transport";
export {
  defaultEndpoints,
  defaultTransport,
  DEFAULT_SOCKET_PATHS,
  DEFAULT_XENBUS_DEVICE,
} from "./transport/default-transport";

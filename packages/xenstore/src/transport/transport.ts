// The client talks to xenstored through this interface only, so the byte
// pipe can be a unix socket, the xenbus device, or an in-memory fake in tests.

export interface TransportEvents {
  /** Bytes from the daemon, in arbitrary chunks (frames may be split or coalesced). */
  onData(chunk: Buffer): void;
  /** The transport is gone (EOF, I/O error, or close()). Called at most once. */
  onClose(error?: Error): void;
}

export interface Transport {
  /** For messages: "unix:/run/xenstored/socket", "device:/dev/xen/xenbus", ... */
  readonly description: string;
  /** Sends one whole frame; rejects if the transport is closed or the write fails. */
  send(frame: Buffer): Promise<void>;
  /** Idempotent; onClose follows (once). */
  close(): void;
}

/** Opens a fresh transport wired to `events`. Called again on every reconnect. */
export type TransportFactory = (events: TransportEvents) => Promise<Transport>;

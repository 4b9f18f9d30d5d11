import {
  isXenstoreErrno,
  XenstoreBaseError,
  XenstoreClosedError,
  XenstoreInvalidArgumentError,
  XenstoreTransactionConflictError,
} from "../errors";
import { firstString, nulTerminated } from "../protocol/payload";
import { XsType } from "../protocol/wire-types";
import { defaultTransport } from "../transport/default-transport";
import type { TransportFactory } from "../transport/transport";
import { Connection, type RequestLabel } from "./connection";
import { checkPath, checkPayloadSize, XenstoreOperations, type RequestOptions } from "./operations";
import {
  parseTransactionId,
  retryDelayMs,
  XenstoreTransaction,
  type TransactionOptions,
} from "./transaction";
import { XenstoreWatch, type InitialFirePolicy, type WatchOptions } from "./watch";

export interface XenstoreClientOptions {
  /** How to reach xenstored; default: $XENSTORED_PATH, the usual sockets, then /dev/xen/xenbus. */
  transport?: TransportFactory;
  /** Default per-request timeout in ms (default 5000; 0 = none). */
  timeoutMs?: number;
  /** Default attempts for transaction() (default 16). */
  transactionMaxAttempts?: number;
  /** Default first backoff for transaction retries, ms (default 2). */
  transactionBackoffMs?: number;
  /** Default policy for the registration fire of new watches (default "deliver"). */
  initialFire?: InitialFirePolicy;
  /** Delay between background reconnect attempts while watches are active, ms (default 200). */
  watchReconnectDelayMs?: number;
}

const DEFAULT_TIMEOUT_MS = 5000;
const DEFAULT_MAX_ATTEMPTS = 16;
const DEFAULT_BACKOFF_MS = 2;

let tokenCounter = 0;

const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => {
    setTimeout(resolve, ms);
  });

/**
 * A multiplexing xenstore client. Connects lazily (or via XenstoreClient.connect),
 * and after the connection drops, reconnects on the next request; active
 * watches are re-registered on the new connection. A transaction never
 * crosses connections: its tx_id means nothing to the next one.
 */
export class XenstoreClient extends XenstoreOperations {
  private readonly transportFactory: TransportFactory;
  private readonly timeoutMs: number;
  private readonly maxAttempts: number;
  private readonly backoffMs: number;
  private readonly initialFire: InitialFirePolicy;
  private readonly watchReconnectDelayMs: number;

  private connection: Connection | undefined;
  private connecting: Promise<Connection> | undefined;
  private generation = 0;
  private isClosed = false;
  private readonly watches = new Map<string, XenstoreWatch>();
  private reconnectTimer: NodeJS.Timeout | undefined;

  constructor(options: XenstoreClientOptions = {}) {
    super();
    this.transportFactory = options.transport ?? defaultTransport();
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.maxAttempts = options.transactionMaxAttempts ?? DEFAULT_MAX_ATTEMPTS;
    this.backoffMs = options.transactionBackoffMs ?? DEFAULT_BACKOFF_MS;
    this.initialFire = options.initialFire ?? "deliver";
    this.watchReconnectDelayMs = options.watchReconnectDelayMs ?? 200;
  }

  /** Creates a client and opens its first connection, so configuration errors surface here. */
  static async connect(options: XenstoreClientOptions = {}): Promise<XenstoreClient> {
    const client = new XenstoreClient(options);
    await client.ensureConnection();
    return client;
  }

  /** True while a connection is open. */
  get connected(): boolean {
    return this.connection !== undefined && !this.connection.closed;
  }

  /** Increments on every new connection (tests and diagnostics). */
  get connectionGeneration(): number {
    return this.generation;
  }

  get endpoint(): string | undefined {
    return this.connection?.description;
  }

  protected async send(type: number, payload: Buffer, label: RequestLabel, options?: RequestOptions): Promise<Buffer> {
    const connection = await this.ensureConnection();
    return connection.request(type, 0, payload, label, options?.timeoutMs ?? this.timeoutMs);
  }

  // ---- connection management ----

  private ensureConnection(): Promise<Connection> {
    if (this.isClosed) return Promise.reject(new XenstoreClosedError("xenstore: client closed"));
    if (this.connection !== undefined && !this.connection.closed) return Promise.resolve(this.connection);
    this.connecting ??= this.openConnection().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private async openConnection(): Promise<Connection> {
    const connection = await Connection.open(this.transportFactory, {
      onWatchEvent: (path, token) => {
        this.watches.get(token)?.deliver({ path, token });
      },
      onClose: () => {
        this.onConnectionClosed(connection);
      },
    });
    if (this.isClosed) {
      connection.close();
      throw new XenstoreClosedError("xenstore: client closed");
    }
    this.connection = connection;
    this.generation += 1;
    if (this.generation > 1) await this.reregisterWatches(connection);
    return connection;
  }

  private async reregisterWatches(connection: Connection): Promise<void> {
    await Promise.all(
      [...this.watches.values()].map(async (watch) => {
        watch.reregistered();
        try {
          await connection.request(XsType.WATCH, 0, nulTerminated(watch.path, watch.token), { op: "watch", subject: watch.path }, this.timeoutMs);
        } catch (err) {
          if (connection.closed) return; // the next reconnect will try again
          this.watches.delete(watch.token);
          watch.fail(err instanceof Error ? err : new Error(String(err)));
        }
      }),
    );
  }

  private onConnectionClosed(connection: Connection): void {
    if (this.connection === connection) this.connection = undefined;
    if (!this.isClosed && this.watches.size > 0) this.scheduleWatchReconnect();
  }

  /** Watches only work while connected, so with watches active the client reconnects on its own. */
  private scheduleWatchReconnect(): void {
    if (this.reconnectTimer !== undefined) return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.isClosed || this.watches.size === 0 || this.connected) return;
      this.ensureConnection().catch(() => {
        this.scheduleWatchReconnect();
      });
    }, this.watchReconnectDelayMs);
    this.reconnectTimer.unref();
  }

  /** Drops the current connection without closing the client (the next request reconnects). */
  dropConnection(): void {
    this.connection?.close();
  }

  /** Closes for good: outstanding requests and watches fail with XenstoreClosedError. */
  close(): Promise<void> {
    if (this.isClosed) return Promise.resolve();
    this.isClosed = true;
    if (this.reconnectTimer !== undefined) clearTimeout(this.reconnectTimer);
    const closed = new XenstoreClosedError("xenstore: client closed");
    for (const watch of this.watches.values()) watch.fail(closed);
    this.watches.clear();
    this.connection?.close();
    this.connection = undefined;
    return Promise.resolve();
  }

  // ---- watches ----

  /**
   * Registers a watch on `path` (a node, or "@releaseDomain" / "@introduceDomain")
   * and resolves once xenstored has acknowledged it. The handler is installed
   * before the request is sent: through the kernel's xenbus device the
   * registration fire can arrive before the acknowledgement.
   */
  async watch(path: string, options: WatchOptions = {}): Promise<XenstoreWatch> {
    checkPath(path, "watch");
    tokenCounter += 1;
    const token = options.token ?? `fastsuspend:${process.pid}:${tokenCounter}`;
    if (token === "" || token.includes("\0")) throw new XenstoreInvalidArgumentError(`xenstore watch ${path}: invalid token`);
    if (this.watches.has(token)) {
      throw new XenstoreInvalidArgumentError(`xenstore watch ${path}: token ${JSON.stringify(token)} already in use`);
    }
    options.signal?.throwIfAborted();
    const payload = nulTerminated(path, token);
    const label = { op: "watch", subject: path };
    checkPayloadSize(payload, label);

    let registeredOn: Connection | undefined;
    const watch = new XenstoreWatch(path, token, options.initialFire ?? this.initialFire, async () => {
      if (this.watches.get(token) === watch) this.watches.delete(token);
      options.signal?.removeEventListener("abort", onAbort);
      const connection = this.connection;
      if (connection === undefined || connection.closed || this.isClosed) return;
      try {
        await connection.request(XsType.UNWATCH, 0, payload, { op: "unwatch", subject: path }, this.timeoutMs);
      } catch (err) {
        // Already gone on the daemon side (or the connection dropped): nothing left to undo.
        if (!(err instanceof XenstoreBaseError)) throw err;
      }
    });
    const onAbort = (): void => {
      void watch.return();
    };

    this.watches.set(token, watch);
    try {
      registeredOn = await this.ensureConnection();
      await registeredOn.request(XsType.WATCH, 0, payload, label, this.timeoutMs);
    } catch (err) {
      if (this.watches.get(token) === watch) this.watches.delete(token);
      throw err;
    }
    options.signal?.addEventListener("abort", onAbort, { once: true });
    if (options.signal?.aborted === true) await watch.return();
    return watch;
  }

  // ---- transactions ----

  /**
   * Runs `body` in a transaction and commits it. On a conflicting commit
   * (EAGAIN) the whole body runs again in a fresh transaction, up to
   * `maxAttempts` times in total, then XenstoreTransactionConflictError. If
   * `body` throws, the transaction is aborted ("F") and the error rethrown
   * (an EAGAIN thrown from inside the body is retried like a commit conflict).
   * `body` must therefore be safe to re-run: no side effects outside `tx`.
   */
  async transaction<T>(body: (tx: XenstoreTransaction) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    const maxAttempts = Math.max(1, options.maxAttempts ?? this.maxAttempts);
    const backoffMs = options.backoffMs ?? this.backoffMs;
    const requestOptions: RequestOptions = options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs };
    for (let attempt = 1; ; attempt += 1) {
      const tx = await this.startTransaction(requestOptions);
      let result: T;
      try {
        result = await body(tx);
      } catch (err) {
        await tx.end(false).catch(() => undefined); // best effort: the error that matters is err
        if (isXenstoreErrno(err, "EAGAIN") && !(err instanceof XenstoreTransactionConflictError)) {
          if (attempt >= maxAttempts) throw new XenstoreTransactionConflictError(attempt);
          await sleep(retryDelayMs(attempt, backoffMs));
          continue;
        }
        throw err;
      }
      try {
        await tx.end(true);
        return result;
      } catch (err) {
        if (!isXenstoreErrno(err, "EAGAIN")) throw err;
        if (attempt >= maxAttempts) throw new XenstoreTransactionConflictError(attempt);
        await sleep(retryDelayMs(attempt, backoffMs));
      }
    }
  }

  private async startTransaction(options: RequestOptions): Promise<XenstoreTransaction> {
    const connection = await this.ensureConnection();
    const timeout = options.timeoutMs ?? this.timeoutMs;
    const reply = await connection.request(XsType.TRANSACTION_START, 0, Buffer.from([0]), { op: "transaction_start" }, timeout);
    const id = parseTransactionId(firstString(reply));
    return new XenstoreTransaction(
      id,
      {
        send: (txId, type, payload, label, opts) => {
          // Bound to the connection it started on: after a reconnect this tx_id is meaningless.
          if (connection.closed) {
            return Promise.reject(new XenstoreClosedError(`xenstore ${label.op}: transaction's connection was lost`));
          }
          return connection.request(type, txId, payload, label, opts?.timeoutMs ?? this.timeoutMs);
        },
      },
      options,
    );
  }
}

/** The name the contract suite and other packages use. */
export type Client = XenstoreClient;

import { mkdtempSync, rmSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { XenstoreClient, type XenstoreClientOptions } from "../client/client";
import { parsePermission, formatPermission, type Permission } from "../permissions";
import { encodeFrame, FrameDecoder, type Frame } from "../protocol/frame";
import { PAYLOAD_MAX } from "../protocol/limits";
import { nulTerminated, splitNulList } from "../protocol/payload";
import { XsType } from "../protocol/wire-types";
import type { TransportFactory } from "../transport/transport";
import { unixSocketTransport } from "../transport/unix-socket-transport";
import { FakeStore, isChildOf, isValidPath, type Outcome } from "./fake-store";

// An in-process xenstored for unit tests: the subset of the protocol this
// package uses, over a real unix socket (or an in-memory pipe), with
// permissions, watches (including the registration fire and the special
// @introduceDomain/@releaseDomain paths), and transactions that fail with
// EAGAIN on commit if anything was committed since they started (the
// whole-store rule of the original cxenstored; real daemons are finer-grained).
// Fault injection hooks let tests drop replies, split them, force conflicts
// and cut connections.

export interface FakeXenstoredOptions {
  /** Write each outgoing message in chunks of this many bytes (exercises reassembly). */
  replyChunkSize?: number;
}

/** A request as the fake received it (for assertions). */
export interface RecordedRequest {
  type: number;
  reqId: number;
  txId: number;
  payload: Buffer;
  domid: number;
}

interface Peer {
  write(bytes: Buffer): void;
  close(): void;
}

interface FakeTransaction {
  store: FakeStore;
  startedAt: number;
  changes: Change[];
  connection: FakeConnection;
}

interface Change {
  path: string;
  removed: boolean;
}

interface FakeDomain {
  releaseFired: boolean;
}

class FakeConnection {
  readonly decoder = new FrameDecoder();
  readonly watches = new Map<string, string>(); // key path\0token -> path
  closed = false;

  constructor(
    readonly peer: Peer,
    readonly domid: number,
  ) {}
}

export class FakeXenstored {
  /** The committed tree. Tests may inspect or seed it directly. */
  store = new FakeStore();
  /** Every request received, in order. */
  readonly requests: RecordedRequest[] = [];
  /** Return true to swallow the reply to a request (the client then times out). */
  dropReply: ((request: RecordedRequest) => boolean) | undefined;
  /** Replies to delay by this many ms (0 = none). */
  replyDelayMs = 0;

  private readonly connections = new Set<FakeConnection>();
  private readonly transactions = new Map<number, FakeTransaction>();
  private readonly domains = new Map<number, FakeDomain>();
  private readonly servers: net.Server[] = [];
  private nextTxId = 1;
  private commitCount = 0;
  private forcedConflicts = 0;
  private readonly dir: string;

  private constructor(private readonly options: FakeXenstoredOptions) {
    this.dir = mkdtempSync(join(tmpdir(), "fake-xenstored-"));
    for (const path of ["/local", "/local/domain", "/local/domain/0"]) this.store.mkdir(path, 0);
    this.domains.set(0, { releaseFired: false });
  }

  /** Starts a fake listening on `<tmpdir>/socket` as dom0. */
  static async start(options: FakeXenstoredOptions = {}): Promise<FakeXenstored> {
    const fake = new FakeXenstored(options);
    await fake.listen(0, "socket");
    return fake;
  }

  /** Socket of the privileged (dom0) listener. */
  get socketPath(): string {
    return join(this.dir, "socket");
  }

  /** Opens another socket whose connections act as domain `domid` (for permission tests). */
  async listenAs(domid: number): Promise<string> {
    return this.listen(domid, `socket-dom${domid}`);
  }

  private listen(domid: number, name: string): Promise<string> {
    const path = join(this.dir, name);
    const server = net.createServer((socket) => {
      const connection = this.accept(
        {
          write: (bytes) => {
            if (!socket.destroyed) socket.write(bytes);
          },
          close: () => socket.destroy(),
        },
        domid,
      );
      socket.on("data", (chunk: Buffer) => {
        this.receive(connection, chunk);
      });
      socket.on("error", () => undefined);
      socket.on("close", () => {
        this.drop(connection);
      });
    });
    this.servers.push(server);
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(path, () => {
        resolve(path);
      });
    });
  }

  /** A transport factory over the dom0 socket. */
  transport(): TransportFactory {
    return unixSocketTransport(this.socketPath);
  }

  /** A transport that never touches the kernel: bytes are handed over in-process, asynchronously. */
  memoryTransport(domid = 0): TransportFactory {
    return (events) => {
      let clientClosed = false;
      const closeBoth = (): void => {
        if (clientClosed) return;
        clientClosed = true;
        this.drop(connection);
        setImmediate(() => {
          events.onClose();
        });
      };
      const connection = this.accept(
        {
          write: (bytes) => {
            const copy = Buffer.from(bytes);
            setImmediate(() => {
              if (!clientClosed) events.onData(copy);
            });
          },
          close: closeBoth,
        },
        domid,
      );
      return Promise.resolve({
        description: "memory:fake-xenstored",
        send: (frame: Buffer) => {
          if (clientClosed) return Promise.reject(new Error("memory transport closed"));
          const copy = Buffer.from(frame);
          setImmediate(() => {
            this.receive(connection, copy);
          });
          return Promise.resolve();
        },
        close: closeBoth,
      });
    };
  }

  /** A client connected to this fake over its socket. */
  connect(options: XenstoreClientOptions = {}): Promise<XenstoreClient> {
    return XenstoreClient.connect({ transport: this.transport(), ...options });
  }

  async stop(): Promise<void> {
    this.disconnectAll();
    await Promise.all(
      this.servers.map(
        (server) =>
          new Promise<void>((resolve) => {
            server.close(() => {
              resolve();
            });
          }),
      ),
    );
    rmSync(this.dir, { recursive: true, force: true });
  }

  // ---- fault injection and domain simulation ----

  /** The next `n` commits fail with EAGAIN even without a conflict. */
  failCommits(n: number): void {
    this.forcedConflicts += n;
  }

  /** Cuts every client connection (as a xenstored restart would). */
  disconnectAll(): void {
    for (const connection of [...this.connections]) {
      connection.peer.close();
      this.drop(connection);
    }
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  /** Number of watches registered across connections. */
  get watchCount(): number {
    let n = 0;
    for (const c of this.connections) n += c.watches.size;
    return n;
  }

  introduceDomain(domid: number): void {
    this.domains.set(domid, { releaseFired: false });
    this.store.mkdir(`/local/domain/${domid}`, 0);
    this.fireSpecial("@introduceDomain");
  }

  /**
   * The domain shut down (suspend, crash...). Like cxenstored, @releaseDomain
   * fires once per domain until XS_RESUME re-arms it.
   */
  shutdownDomain(domid: number): void {
    const domain = this.domains.get(domid);
    if (domain === undefined || domain.releaseFired) return;
    domain.releaseFired = true;
    this.fireSpecial("@releaseDomain");
  }

  destroyDomain(domid: number): void {
    if (!this.domains.delete(domid)) return;
    this.fireSpecial("@releaseDomain");
  }

  // ---- protocol ----

  private accept(peer: Peer, domid: number): FakeConnection {
    const connection = new FakeConnection(peer, domid);
    this.connections.add(connection);
    return connection;
  }

  private drop(connection: FakeConnection): void {
    connection.closed = true;
    this.connections.delete(connection);
    for (const [id, tx] of this.transactions) if (tx.connection === connection) this.transactions.delete(id);
  }

  private receive(connection: FakeConnection, chunk: Buffer): void {
    if (connection.closed) return;
    let frames: Frame[];
    try {
      frames = connection.decoder.push(chunk);
    } catch {
      // Oversized request: a real xenstored kills the connection, and so do we.
      connection.peer.close();
      this.drop(connection);
      return;
    }
    for (const frame of frames) {
      const request: RecordedRequest = { ...frame, domid: connection.domid };
      this.requests.push(request);
      const reply = this.handle(connection, request);
      if (this.dropReply?.(request) === true) continue;
      const bytes = encodeFrame({ type: reply.type, reqId: frame.reqId, txId: frame.txId, payload: reply.payload });
      if (this.replyDelayMs > 0) {
        setTimeout(() => {
          this.send(connection, bytes);
        }, this.replyDelayMs);
      } else {
        this.send(connection, bytes);
      }
    }
  }

  private send(connection: FakeConnection, bytes: Buffer): void {
    if (connection.closed) return;
    const size = this.options.replyChunkSize;
    if (size === undefined || size <= 0) {
      connection.peer.write(bytes);
      return;
    }
    for (let offset = 0; offset < bytes.length; offset += size) {
      connection.peer.write(bytes.subarray(offset, offset + size));
    }
  }

  private handle(connection: FakeConnection, request: RecordedRequest): { type: number; payload: Buffer } {
    const outcome = this.execute(connection, request);
    if (!outcome.ok) return { type: XsType.ERROR, payload: nulTerminated(outcome.errno) };
    return { type: request.type, payload: outcome.value };
  }

  private execute(connection: FakeConnection, request: RecordedRequest): Outcome<Buffer> {
    const OK: Outcome<Buffer> = { ok: true, value: nulTerminated("OK") };
    const err = (errno: string): Outcome<Buffer> => ({ ok: false, errno });
    const args = splitNulList(request.payload);
    const domid = connection.domid;

    let tx: FakeTransaction | undefined;
    if (request.txId !== 0 && request.type !== XsType.WATCH && request.type !== XsType.UNWATCH) {
      tx = this.transactions.get(request.txId);
      if (tx?.connection !== connection) return err("ENOENT");
    }
    const store = tx?.store ?? this.store;
    const changed = (change: Change): void => {
      if (tx !== undefined) tx.changes.push(change);
      else {
        this.commitCount += 1;
        this.fire([change]);
      }
    };
    const pathArg = (): string | undefined => {
      const path = args[0];
      return path !== undefined && isValidPath(path) ? path : undefined;
    };

    switch (request.type) {
      case XsType.READ: {
        const path = pathArg();
        if (path === undefined) return err("EINVAL");
        return store.read(path, domid);
      }
      case XsType.WRITE: {
        const end = request.payload.indexOf(0);
        if (end === -1) return err("EINVAL");
        const path = request.payload.toString("utf8", 0, end);
        if (!isValidPath(path)) return err("EINVAL");
        const result = store.write(path, request.payload.subarray(end + 1), domid);
        if (!result.ok) return err(result.errno);
        changed({ path, removed: false });
        return OK;
      }
      case XsType.MKDIR: {
        const path = pathArg();
        if (path === undefined) return err("EINVAL");
        const result = store.mkdir(path, domid);
        if (!result.ok) return err(result.errno);
        if (result.value) changed({ path, removed: false });
        return OK;
      }
      case XsType.RM: {
        const path = pathArg();
        if (path === undefined) return err("EINVAL");
        const result = store.rm(path, domid);
        if (!result.ok) return err(result.errno);
        if (result.value) changed({ path, removed: true });
        return OK;
      }
      case XsType.DIRECTORY: {
        const path = pathArg();
        if (path === undefined) return err("EINVAL");
        const result = store.directory(path, domid);
        if (!result.ok) return err(result.errno);
        const payload = nulTerminated(...result.value);
        return payload.length > PAYLOAD_MAX ? err("E2BIG") : { ok: true, value: payload };
      }
      case XsType.GET_PERMS: {
        const path = pathArg();
        if (path === undefined) return err("EINVAL");
        const result = store.getPerms(path, domid);
        return result.ok ? { ok: true, value: nulTerminated(...result.value.map(formatPermission)) } : err(result.errno);
      }
      case XsType.SET_PERMS: {
        const [path, ...entries] = args;
        if (path === undefined || !isValidPath(path)) return err("EINVAL");
        const perms: Permission[] = [];
        for (const entry of entries) {
          const perm = parsePermission(entry);
          if (perm === undefined) return err("EINVAL");
          perms.push(perm);
        }
        const result = store.setPerms(path, perms, domid);
        if (!result.ok) return err(result.errno);
        changed({ path, removed: false });
        return OK;
      }
      case XsType.WATCH: {
        const [path, token] = args;
        if (path === undefined || token === undefined) return err("EINVAL");
        if (!path.startsWith("@") && !isValidPath(path)) return err("EINVAL");
        const key = `${path}\0${token}`;
        if (connection.watches.has(key)) return err("EEXIST");
        connection.watches.set(key, path);
        // The registration fire, queued right after the acknowledgement.
        setImmediate(() => {
          if (connection.watches.has(key)) this.sendEvent(connection, path, token);
        });
        return OK;
      }
      case XsType.UNWATCH: {
        const [path, token] = args;
        if (path === undefined || token === undefined) return err("EINVAL");
        if (!connection.watches.delete(`${path}\0${token}`)) return err("ENOENT");
        return OK;
      }
      case XsType.TRANSACTION_START: {
        if (request.txId !== 0) return err("EBUSY");
        const id = this.nextTxId++;
        this.transactions.set(id, { store: this.store.clone(), startedAt: this.commitCount, changes: [], connection });
        return { ok: true, value: nulTerminated(String(id)) };
      }
      case XsType.TRANSACTION_END: {
        if (tx === undefined) return err("ENOENT");
        this.transactions.delete(request.txId);
        const verdict = args[0];
        if (verdict === "F") return OK;
        if (verdict !== "T") return err("EINVAL");
        if (this.forcedConflicts > 0) {
          this.forcedConflicts -= 1;
          return err("EAGAIN");
        }
        if (tx.startedAt !== this.commitCount) return err("EAGAIN");
        if (tx.changes.length > 0) {
          this.store = tx.store;
          this.commitCount += 1;
          this.fire(tx.changes);
        }
        return OK;
      }
      case XsType.GET_DOMAIN_PATH: {
        const id = this.domidArg(args[0]);
        return id === undefined ? err("EINVAL") : { ok: true, value: nulTerminated(`/local/domain/${id}`) };
      }
      case XsType.IS_DOMAIN_INTRODUCED: {
        const id = this.domidArg(args[0]);
        if (id === undefined) return err("EINVAL");
        return { ok: true, value: nulTerminated(this.domains.has(id) ? "T" : "F") };
      }
      case XsType.RESUME: {
        if (domid !== 0) return err("EACCES");
        const id = this.domidArg(args[0]);
        if (id === undefined) return err("EINVAL");
        const domain = this.domains.get(id);
        if (domain === undefined) return err("ENOENT");
        domain.releaseFired = false;
        return OK;
      }
      default:
        return err("ENOSYS");
    }
  }

  private domidArg(text: string | undefined): number | undefined {
    if (text === undefined || !/^[0-9]{1,5}$/.test(text)) return undefined;
    const id = Number(text);
    return id <= 0xffff ? id : undefined;
  }

  private fire(changes: readonly Change[]): void {
    for (const connection of this.connections) {
      for (const [key, wpath] of connection.watches) {
        if (wpath.startsWith("@")) continue;
        const token = key.slice(wpath.length + 1);
        for (const change of changes) {
          if (isChildOf(change.path, wpath)) this.sendEvent(connection, change.path, token);
          // Removing a parent of the watched path reports the watched path itself.
          else if (change.removed && isChildOf(wpath, change.path)) this.sendEvent(connection, wpath, token);
        }
      }
    }
  }

  private fireSpecial(special: string): void {
    for (const connection of this.connections) {
      for (const [key, wpath] of connection.watches) {
        if (wpath === special) this.sendEvent(connection, special, key.slice(wpath.length + 1));
      }
    }
  }

  private sendEvent(connection: FakeConnection, path: string, token: string): void {
    this.send(
      connection,
      encodeFrame({ type: XsType.WATCH_EVENT, reqId: 0, txId: 0, payload: nulTerminated(path, token) }),
    );
  }
}

// The opt-in HTTP listener for Prometheus (`fastsuspendd --metrics-listen 127.0.0.1:9477`): GET
// /metrics only, on a loopback address only. The metrics name the host's domains and the daemon
// runs as root: anything beyond this host should reach them through a local scraper (node_exporter's
// textfile collector, or a Prometheus/agent on the host), not through a port of the daemon's.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { BlockList, isIP } from "node:net";

import { PROMETHEUS_CONTENT_TYPE } from "./metrics";

export type MetricsListenErrorCode =
  /** Not HOST:PORT with a numeric host (a name could resolve to anything) and a port in 0-65535. */
  | "EADDRESS"
  /** A numeric address that is not loopback (127.0.0.0/8, ::1). */
  | "ENOTLOOPBACK"
  /** The address could not be bound (in use, not on this host...: see `errno`). */
  | "EBIND";

export class MetricsListenError extends Error {
  readonly code: MetricsListenErrorCode;
  /** The system's code when binding failed (EADDRINUSE, EADDRNOTAVAIL, EACCES...). */
  readonly errno: string | undefined;

  constructor(code: MetricsListenErrorCode, message: string, options?: ErrorOptions & { errno?: string }) {
    super(message, options);
    this.name = "MetricsListenError";
    this.code = code;
    this.errno = options?.errno;
  }
}

export interface ListenAddress {
  host: string;
  port: number;
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet("127.0.0.0", 8, "ipv4");
LOOPBACK.addAddress("::1", "ipv6");
LOOPBACK.addSubnet("::ffff:127.0.0.0", 104, "ipv6");

export function isLoopback(host: string): boolean {
  const family = isIP(host);
  if (family === 0) return false;
  return LOOPBACK.check(host, family === 4 ? "ipv4" : "ipv6");
}

/** `127.0.0.1:9477` or `[::1]:9477` (port 0: any free port). Throws MetricsListenError. */
export function parseListenAddress(text: string): ListenAddress {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):([0-9]{1,5})$/.exec(text);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (m === null || host === undefined || port > 65535) {
    throw new MetricsListenError("EADDRESS", `--metrics-listen: "${text.slice(0, 64)}" is not HOST:PORT (e.g. 127.0.0.1:9477 or [::1]:9477; port 0-65535)`);
  }
  if (isIP(host) === 0) {
    throw new MetricsListenError("EADDRESS", `--metrics-listen: "${host.slice(0, 64)}" is not a numeric address: give a loopback address (127.0.0.1 or [::1]), a host name may resolve to any interface`);
  }
  if (!isLoopback(host)) {
    throw new MetricsListenError("ENOTLOOPBACK", `--metrics-listen: ${host} is not a loopback address: the metrics listener only listens on 127.0.0.0/8 or ::1 (it has no authentication; scrape from this host, e.g. through node_exporter's textfile collector)`);
  }
  return { host, port };
}

export interface MetricsHttpOptions {
  /** The exposition text (the daemon's `metrics` request: counted, and after time-critical work). */
  render: () => Promise<string>;
  log?: (line: string) => void;
}

export class MetricsHttpServer {
  readonly #server: Server;
  readonly #render: () => Promise<string>;
  readonly #log: (line: string) => void;
  #bound: ListenAddress | undefined;

  constructor(opts: MetricsHttpOptions) {
    this.#render = opts.render;
    this.#log = opts.log ?? (() => undefined);
    this.#server = createServer((req, res) => {
      this.#answer(req, res);
    });
    // A scrape is one short request: a client that holds a connection open gets cut off.
    this.#server.headersTimeout = 5_000;
    this.#server.requestTimeout = 10_000;
  }

  /** The address bound (the port chosen when 0 was asked), once listening. */
  get address(): ListenAddress | undefined {
    return this.#bound;
  }

  get listening(): boolean {
    return this.#server.listening;
  }

  /** Listens on a loopback address (checked again here); on failure nothing is left listening. */
  async listen(addr: ListenAddress): Promise<ListenAddress> {
    const shown = addr.host.includes(":") ? `[${addr.host}]:${addr.port}` : `${addr.host}:${addr.port}`;
    if (!isLoopback(addr.host)) throw new MetricsListenError("ENOTLOOPBACK", `metrics listener: ${addr.host} is not a loopback address`);
    await new Promise<void>((resolve, reject) => {
      const onErr = (err: NodeJS.ErrnoException): void => {
        reject(new MetricsListenError("EBIND", `metrics listener: cannot listen on ${shown}: ${err.code ?? err.message}${err.code === "EADDRINUSE" ? " (another process has that port: pick another with --metrics-listen)" : ""}`, { cause: err, ...(err.code === undefined ? {} : { errno: err.code }) }));
      };
      this.#server.once("error", onErr);
      this.#server.listen({ host: addr.host, port: addr.port, exclusive: true }, () => {
        this.#server.off("error", onErr);
        resolve();
      });
    });
    this.#server.on("error", (err) => {
      this.#log(`metrics listener: ${err.message}`);
    });
    const a = this.#server.address();
    this.#bound = a !== null && typeof a === "object" ? { host: a.address, port: a.port } : addr;
    return this.#bound;
  }

  #answer(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? "/").split("?")[0];
    if (path !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain; charset=utf-8" });
      res.end("not found: fastsuspendd serves GET /metrics only\n");
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { "content-type": "text/plain; charset=utf-8", allow: "GET, HEAD" });
      res.end("method not allowed: GET /metrics\n");
      return;
    }
    this.#render().then(
      (body) => {
        res.writeHead(200, { "content-type": PROMETHEUS_CONTENT_TYPE, "content-length": Buffer.byteLength(body) });
        res.end(req.method === "HEAD" ? undefined : body);
      },
      (err: unknown) => {
        res.writeHead(503, { "content-type": "text/plain; charset=utf-8" });
        res.end(`metrics unavailable: ${err instanceof Error ? err.message : String(err)}\n`);
      },
    );
  }

  /** Stops listening and drops open connections (a scrape in flight is cut off). Idempotent. */
  async close(): Promise<void> {
    if (!this.#server.listening) return;
    await new Promise<void>((resolve) => {
      this.#server.close(() => {
        resolve();
      });
      this.#server.closeAllConnections();
    });
  }
}

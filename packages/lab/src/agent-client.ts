// The host side of the agent protocol (see assets/agent.cjs): JSON lines over QEMU's
// virtio-serial chardev socket, requests matched to replies by id.
import { type Socket, connect } from "node:net";
import { LabError } from "./errors";

export interface ExecResult {
  code: number;
  signal: string | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  /** Wall time of the command inside dom0. */
  ms: number;
}

export interface ExecOptions {
  timeoutMs?: number;
  cwd?: string;
  env?: Record<string, string>;
  stdin?: string | Buffer;
  onStdout?: (text: string) => void;
  onStderr?: (text: string) => void;
}

interface Reply {
  id: number;
  chunk?: "stdout" | "stderr";
  data?: string;
  done?: boolean;
  code?: number;
  signal?: string | null;
  timedOut?: boolean;
  ms?: number;
  error?: string;
}

interface Pending {
  out: Buffer[];
  err: Buffer[];
  opts: ExecOptions;
  resolve: (r: ExecResult) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class AgentClient {
  private nextId = 1;
  private buf = "";
  private readonly pending = new Map<number, Pending>();
  private closed = false;

  private constructor(private readonly sock: Socket) {
    sock.setEncoding("utf8");
    sock.on("data", (d: string) => { this.onData(d); });
    sock.on("close", () => { this.failAll(new Error("agent connection closed")); });
    sock.on("error", () => undefined); // close follows and fails what is pending
  }

  static connect(path: string, timeoutMs = 2000): Promise<AgentClient> {
    return new Promise((resolve, reject) => {
      const sock = connect(path);
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new Error(`connect ${path}: timeout`));
      }, timeoutMs);
      sock.once("connect", () => {
        clearTimeout(timer);
        sock.write("\n"); // ends any partial line a previous client left behind
        resolve(new AgentClient(sock));
      });
      sock.once("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
  }

  ping(timeoutMs: number): Promise<ExecResult> {
    return this.request({ op: "ping" }, { timeoutMs });
  }

  exec(argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const stdin = opts.stdin === undefined ? undefined : Buffer.from(opts.stdin).toString("base64");
    return this.request({ op: "exec", argv, cwd: opts.cwd, env: opts.env, timeoutMs: opts.timeoutMs, stdin }, opts);
  }

  close(): void {
    this.closed = true;
    this.sock.destroy();
  }

  private request(body: object, opts: ExecOptions): Promise<ExecResult> {
    if (this.closed) return Promise.reject(new Error("agent client is closed"));
    const id = this.nextId++;
    // The agent enforces timeoutMs in dom0; the host waits a little longer in case dom0 is gone.
    const hostTimeout = (opts.timeoutMs ?? 600_000) + 15_000;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new LabError(`no answer from dom0's agent after ${hostTimeout} ms`, "check the console (fastsuspend-lab console): dom0 may have crashed"));
      }, hostTimeout);
      this.pending.set(id, { out: [], err: [], opts, resolve, reject, timer });
      this.sock.write(JSON.stringify({ id, ...body }) + "\n");
    });
  }

  private onData(d: string): void {
    this.buf += d;
    let nl: number;
    while ((nl = this.buf.indexOf("\n")) >= 0) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      let msg: Reply;
      try {
        msg = JSON.parse(line) as Reply;
      } catch {
        continue;
      }
      const p = this.pending.get(msg.id);
      if (!p) continue;
      if (msg.chunk && msg.data !== undefined) {
        const b = Buffer.from(msg.data, "base64");
        (msg.chunk === "stdout" ? p.out : p.err).push(b);
        (msg.chunk === "stdout" ? p.opts.onStdout : p.opts.onStderr)?.(b.toString());
      } else if (msg.done) {
        clearTimeout(p.timer);
        this.pending.delete(msg.id);
        const stderr = Buffer.concat(p.err).toString() + (msg.error ? `agent: ${msg.error}\n` : "");
        p.resolve({
          code: msg.code ?? -1, signal: msg.signal ?? null, timedOut: msg.timedOut ?? false, ms: msg.ms ?? 0,
          stdout: Buffer.concat(p.out).toString(), stderr,
        });
      }
    }
  }

  private failAll(e: Error): void {
    this.closed = true;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(e);
      this.pending.delete(id);
    }
  }
}

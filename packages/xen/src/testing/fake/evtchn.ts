// A dom0 user handle on the fake: Linux's evtchn driver semantics (ENOTCONN for a port not bound
// through this handle, EINVAL past the table, unmask of a foreign port silently ignored), with
// delivery through a queue drained on setImmediate, as the fd poll would.
import { xenError } from "../../errors";
import type { RawEvtchn } from "../../evtchn";
import { MAX_PORTS, type FakeHypervisor, type PortSink } from "./model";

let nextFd = 1000;

export class FakeRawEvtchn implements RawEvtchn, PortSink {
  readonly #hv: FakeHypervisor;
  readonly #dom: number;
  readonly #onClose: (h: FakeRawEvtchn) => void;
  readonly #ports = new Set<number>();
  readonly #ring: number[] = [];
  readonly #fd = nextFd++;
  #cb: ((err: Error | null, port: number) => void) | undefined;
  #scheduled = false;
  #closed = false;

  constructor(hv: FakeHypervisor, dom: number, onClose: (h: FakeRawEvtchn) => void) {
    this.#hv = hv;
    this.#dom = dom;
    this.#onClose = onClose;
  }

  get portCount(): number {
    return this.#ports.size;
  }

  #check(call: string, args = "handle closed"): void {
    if (this.#closed) throw xenError(call, args, "EBADF");
  }

  #owned(call: string, port: number): void {
    const args = `port=${port}`;
    if (port >= MAX_PORTS) throw xenError(call, args, "EINVAL");
    if (!this.#ports.has(port)) throw xenError(call, args, "ENOTCONN");
  }

  fd(): number {
    this.#check("xenevtchn_fd");
    return this.#fd;
  }

  bindInterdomain(remoteDomid: number, remotePort: number): number {
    const call = "xenevtchn_bind_interdomain";
    this.#check(call);
    const port = this.#hv.bindInterdomain(this.#dom, remoteDomid, remotePort, this, call, `dom=${remoteDomid}, remote_port=${remotePort}`);
    this.#ports.add(port);
    return port;
  }

  bindUnboundPort(remoteDomid: number): number {
    const call = "xenevtchn_bind_unbound_port";
    this.#check(call);
    const port = this.#hv.allocUnbound(this.#dom, remoteDomid, this, call, `remote_dom=${remoteDomid}`);
    this.#ports.add(port);
    return port;
  }

  bindVirq(virq: number): number {
    const call = "xenevtchn_bind_virq";
    this.#check(call);
    const port = this.#hv.bindVirq(this.#dom, virq, this, call, `virq=${virq}`);
    this.#ports.add(port);
    return port;
  }

  notify(port: number): void {
    const call = "xenevtchn_notify";
    this.#check(call);
    this.#owned(call, port);
    this.#hv.send(this.#dom, port, call, `port=${port}`);
  }

  unbind(port: number): void {
    const call = "xenevtchn_unbind";
    this.#check(call);
    this.#owned(call, port);
    this.#hv.close(this.#dom, port);
    this.#ports.delete(port);
    for (let i = this.#ring.indexOf(port); i >= 0; i = this.#ring.indexOf(port)) this.#ring.splice(i, 1);
  }

  unmask(port: number): void {
    this.#check("xenevtchn_unmask");
    if (this.#ports.has(port)) this.#hv.unmask(this.#dom, port);
  }

  pending(): number {
    this.#check("xenevtchn_pending");
    return this.#ring.shift() ?? -1;
  }

  deliver(port: number): void {
    this.#ring.push(port);
    this.#schedule();
  }

  #schedule(): void {
    if (this.#scheduled || this.#cb === undefined || this.#ring.length === 0) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      for (let i = 0; i < 64 && this.#cb !== undefined; i++) {
        const port = this.#ring.shift();
        if (port === undefined) return;
        this.#cb(null, port);
      }
      this.#schedule();
    });
  }

  startPolling(cb: (err: Error | null, port: number) => void): void {
    this.#check("uv_poll_start");
    if (this.#cb !== undefined) throw new Error("EvtchnHandle is already polling");
    this.#cb = cb;
    this.#schedule();
  }

  stopPolling(): void {
    this.#cb = undefined;
  }

  ref(): void {
    /* the fake holds no libuv handle */
  }

  unref(): void {
    /* the fake holds no libuv handle */
  }

  boundPorts(): number[] {
    return [...this.#ports].sort((a, b) => a - b);
  }

  isClosed(): boolean {
    return this.#closed;
  }

  close(): void {
    if (this.#closed) return;
    this.stopPolling();
    for (const port of this.#ports) this.#hv.close(this.#dom, port);
    this.#ports.clear();
    this.#ring.length = 0;
    this.#closed = true;
    this.#onClose(this);
  }
}

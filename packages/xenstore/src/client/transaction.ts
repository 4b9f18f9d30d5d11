import { XenstoreClosedError, XenstoreProtocolError } from "../errors";
import type { RequestLabel } from "./connection";
import { XsType } from "../protocol/wire-types";
import { XenstoreOperations, type RequestOptions } from "./operations";

export interface TransactionOptions extends RequestOptions {
  /** Total attempts when commits conflict (EAGAIN). Default 16. */
  maxAttempts?: number;
  /** First retry delay in ms; doubles each attempt, capped at 100 ms, with jitter. Default 2. */
  backoffMs?: number;
}

/** What a transaction handle needs from the client: a send bound to one connection. */
export interface TransactionChannel {
  send(txId: number, type: number, payload: Buffer, label: RequestLabel, options?: RequestOptions): Promise<Buffer>;
}

/**
 * A transaction handle: the same operations as the client, sent with this
 * transaction's tx_id. Only valid inside the callback passed to
 * client.transaction(); afterwards every call rejects.
 */
export class XenstoreTransaction extends XenstoreOperations {
  private ended = false;

  /** @internal */
  constructor(
    readonly id: number,
    private readonly channel: TransactionChannel,
    private readonly defaults: RequestOptions,
  ) {
    super();
  }

  protected send(type: number, payload: Buffer, label: RequestLabel, options?: RequestOptions): Promise<Buffer> {
    if (this.ended) {
      return Promise.reject(new XenstoreClosedError(`xenstore ${label.op}: transaction ${this.id} has ended`));
    }
    return this.channel.send(this.id, type, payload, label, { ...this.defaults, ...options });
  }

  /** @internal XS_TRANSACTION_END "T" or "F". */
  async end(commit: boolean): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    await this.channel.send(
      this.id,
      XsType.TRANSACTION_END,
      Buffer.from(commit ? "T\0" : "F\0", "latin1"),
      { op: commit ? "transaction_commit" : "transaction_abort", subject: String(this.id) },
      this.defaults,
    );
  }
}

/** Parses TRANSACTION_START's reply: the id as unsigned decimal. */
export function parseTransactionId(text: string): number {
  if (!/^(0|[1-9][0-9]{0,9})$/.test(text)) {
    throw new XenstoreProtocolError(`xenstore transaction_start: malformed id ${JSON.stringify(text)}`);
  }
  const id = Number(text);
  if (id === 0 || id > 0xffffffff) {
    throw new XenstoreProtocolError(`xenstore transaction_start: id ${text} out of range`);
  }
  return id;
}

/** Delay before retry number `attempt` (1-based): exponential, capped, jittered so retrying clients spread out. */
export function retryDelayMs(attempt: number, baseMs: number): number {
  const ceiling = Math.min(100, baseMs * 2 ** (attempt - 1));
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

import {
  isXenstoreErrno,
  XenstoreInvalidArgumentError,
  XenstorePayloadTooLargeError,
  XenstoreProtocolError,
} from "../errors";
import { parsePort } from "../parse-port";
import {
  formatPermission,
  parsePermissionList,
  validatePermissionList,
  type Permission,
} from "../permissions";
import { PAYLOAD_MAX } from "../protocol/limits";
import { containsNul, firstString, nulTerminated, splitNulList } from "../protocol/payload";
import { XsType } from "../protocol/wire-types";
import type { RequestLabel } from "./connection";

export interface RequestOptions {
  /** Per-request timeout in ms; overrides the client default. 0 waits forever. */
  timeoutMs?: number;
}

/** A value to write: bytes, or a string sent as UTF-8 (no terminating NUL: values are raw). */
export type XenstoreValue = Buffer | Uint8Array | string;

export function checkPath(path: string, op: string): void {
  if (path === "" || containsNul(path)) {
    throw new XenstoreInvalidArgumentError(`xenstore ${op}: invalid path ${JSON.stringify(path)}`);
  }
}

export function checkDomidArgument(domid: number, op: string): void {
  if (!Number.isInteger(domid) || domid < 0 || domid > 0xffff) {
    throw new XenstoreInvalidArgumentError(`xenstore ${op}: invalid domid ${String(domid)}`);
  }
}

/** Refuses, before anything is sent, a payload xenstored would kill the connection for. */
export function checkPayloadSize(payload: Buffer, label: RequestLabel): void {
  if (payload.length > PAYLOAD_MAX) {
    throw new XenstorePayloadTooLargeError(label.op, label.subject, payload.length, PAYLOAD_MAX);
  }
}

/**
 * The path operations, shared by the client (tx_id 0) and by a transaction
 * handle (its tx_id), so `tx.read` and `client.read` are the same code.
 */
export abstract class XenstoreOperations {
  /** Sends one request in this handle's transaction context and returns the reply payload. */
  protected abstract send(type: number, payload: Buffer, label: RequestLabel, options?: RequestOptions): Promise<Buffer>;

  /** Runs argument checks inside the promise chain, so misuse rejects instead of throwing synchronously. */
  private async call(
    type: number,
    build: () => Buffer,
    label: RequestLabel,
    options: RequestOptions | undefined,
  ): Promise<Buffer> {
    const payload = build();
    checkPayloadSize(payload, label);
    return this.send(type, payload, label, options);
  }

  private pathCall(type: number, op: string, path: string, options?: RequestOptions, extra?: Buffer): Promise<Buffer> {
    return this.call(
      type,
      () => {
        checkPath(path, op);
        const head = nulTerminated(path);
        return extra === undefined ? head : Buffer.concat([head, extra]);
      },
      { op, subject: path },
      options,
    );
  }

  /** The value at `path`, as bytes. Rejects with XenstoreError ENOENT if absent. */
  read(path: string, options?: RequestOptions): Promise<Buffer> {
    return this.pathCall(XsType.READ, "read", path, options);
  }

  /** The value as UTF-8 text. */
  async readString(path: string, options?: RequestOptions): Promise<string> {
    return (await this.read(path, options)).toString("utf8");
  }

  /** Like read, but undefined when the node does not exist. */
  async tryRead(path: string, options?: RequestOptions): Promise<Buffer | undefined> {
    try {
      return await this.read(path, options);
    } catch (err) {
      if (isXenstoreErrno(err, "ENOENT")) return undefined;
      throw err;
    }
  }

  async tryReadString(path: string, options?: RequestOptions): Promise<string | undefined> {
    return (await this.tryRead(path, options))?.toString("utf8");
  }

  /**
   * Reads an event-channel port written by a guest. Absent, empty, or not
   * strictly a decimal port number: undefined (never NaN, never a partial parse).
   */
  async readPort(path: string, options?: RequestOptions): Promise<number | undefined> {
    const value = await this.tryRead(path, options);
    return value === undefined ? undefined : parsePort(value);
  }

  /** Writes `value` at `path`, creating missing parents with empty values. */
  async write(path: string, value: XenstoreValue, options?: RequestOptions): Promise<void> {
    const bytes = typeof value === "string" ? Buffer.from(value, "utf8") : Buffer.from(value);
    await this.pathCall(XsType.WRITE, "write", path, options, bytes);
  }

  /** Ensures `path` exists (existing values are left alone). */
  async mkdir(path: string, options?: RequestOptions): Promise<void> {
    await this.pathCall(XsType.MKDIR, "mkdir", path, options);
  }

  /** Removes `path` and its subtree; not an error if it does not exist. */
  async rm(path: string, options?: RequestOptions): Promise<void> {
    await this.pathCall(XsType.RM, "rm", path, options);
  }

  /** Names (not paths) of the immediate children of `path`. */
  async directory(path: string, options?: RequestOptions): Promise<string[]> {
    return splitNulList(await this.pathCall(XsType.DIRECTORY, "directory", path, options));
  }

  /** The node's permissions: entry 0 is the owner and the default for other domains. */
  async getPermissions(path: string, options?: RequestOptions): Promise<Permission[]> {
    const reply = await this.pathCall(XsType.GET_PERMS, "get_perms", path, options);
    return parsePermissionList(splitNulList(reply), path);
  }

  async setPermissions(path: string, permissions: readonly Permission[], options?: RequestOptions): Promise<void> {
    await this.call(
      XsType.SET_PERMS,
      () => {
        checkPath(path, "set_perms");
        validatePermissionList(permissions);
        return nulTerminated(path, ...permissions.map(formatPermission));
      },
      { op: "set_perms", subject: path },
      options,
    );
  }

  /** "/local/domain/<domid>", as xenstored computes it. */
  async getDomainPath(domid: number, options?: RequestOptions): Promise<string> {
    const reply = await this.call(
      XsType.GET_DOMAIN_PATH,
      () => {
        checkDomidArgument(domid, "get_domain_path");
        return nulTerminated(String(domid));
      },
      { op: "get_domain_path", subject: String(domid) },
      options,
    );
    return firstString(reply);
  }

  /** Whether xenstored is connected to the domain (introduced and not yet released). */
  async isDomainIntroduced(domid: number, options?: RequestOptions): Promise<boolean> {
    const reply = await this.call(
      XsType.IS_DOMAIN_INTRODUCED,
      () => {
        checkDomidArgument(domid, "is_domain_introduced");
        return nulTerminated(String(domid));
      },
      { op: "is_domain_introduced", subject: String(domid) },
      options,
    );
    const answer = firstString(reply);
    if (answer === "T") return true;
    if (answer === "F") return false;
    throw new XenstoreProtocolError(`xenstore is_domain_introduced ${domid}: unexpected reply ${JSON.stringify(answer)}`);
  }

  /**
   * XS_RESUME: re-arms @releaseDomain for a domain that was shut down and
   * resumed (cxenstored only fires it once per domain otherwise; libxl sends
   * this after every xc_domain_resume). dom0 only.
   */
  async resumeDomain(domid: number, options?: RequestOptions): Promise<void> {
    await this.call(
      XsType.RESUME,
      () => {
        checkDomidArgument(domid, "resume");
        return nulTerminated(String(domid));
      },
      { op: "resume", subject: String(domid) },
      options,
    );
  }
}

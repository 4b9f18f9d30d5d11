import type { Permission } from "../permissions";

// The in-memory tree behind the fake xenstored: nodes with a byte value,
// permissions and ordered children, with the access rules of cxenstored
// (dom0 is privileged; the owner has full access; an explicit entry for a
// domain beats the owner entry's default).

export interface FakeNode {
  value: Buffer;
  perms: Permission[];
  children: Map<string, FakeNode>;
}

/** An operation outcome: a value, or the errno name xenstored would send. */
export type Outcome<T> = { ok: true; value: T } | { ok: false; errno: string };

const ok = <T>(value: T): Outcome<T> => ({ ok: true, value });
const fail = <T>(errno: string): Outcome<T> => ({ ok: false, errno });

const PATH_CHARS = /^[A-Za-z0-9\-/_@]+$/;

/** Absolute, allowed characters, no "//", no trailing "/" (except the root itself), ≤ 3072 bytes. */
export function isValidPath(path: string): boolean {
  if (path === "/") return true;
  return (
    path.startsWith("/") &&
    !path.endsWith("/") &&
    !path.includes("//") &&
    PATH_CHARS.test(path) &&
    Buffer.byteLength(path) <= 3072
  );
}

export function splitPath(path: string): string[] {
  return path === "/" ? [] : path.slice(1).split("/");
}

/** The spec's "child" relation: identical, or parent is "/", or parent + "/" is a prefix. */
export function isChildOf(child: string, parent: string): boolean {
  return child === parent || parent === "/" || child.startsWith(`${parent}/`);
}

function newNode(perms: Permission[]): FakeNode {
  return { value: Buffer.alloc(0), perms: perms.map((p) => ({ ...p })), children: new Map() };
}

function cloneNode(node: FakeNode): FakeNode {
  return {
    value: Buffer.from(node.value),
    perms: node.perms.map((p) => ({ ...p })),
    children: new Map([...node.children].map(([name, child]) => [name, cloneNode(child)])),
  };
}

function accessFor(node: FakeNode, domid: number): Permission["access"] {
  if (domid === 0) return "both";
  const [owner, ...acl] = node.perms;
  if (owner === undefined) return "none";
  if (owner.domid === domid) return "both";
  return acl.find((p) => p.domid === domid)?.access ?? owner.access;
}

export function canRead(node: FakeNode, domid: number): boolean {
  const access = accessFor(node, domid);
  return access === "read" || access === "both";
}

export function canWrite(node: FakeNode, domid: number): boolean {
  const access = accessFor(node, domid);
  return access === "write" || access === "both";
}

export class FakeStore {
  constructor(readonly root: FakeNode = newNode([{ domid: 0, access: "none" }])) {}

  clone(): FakeStore {
    return new FakeStore(cloneNode(this.root));
  }

  lookup(path: string): FakeNode | undefined {
    let node: FakeNode | undefined = this.root;
    for (const name of splitPath(path)) {
      node = node.children.get(name);
      if (node === undefined) return undefined;
    }
    return node;
  }

  read(path: string, domid: number): Outcome<Buffer> {
    const node = this.lookup(path);
    if (node === undefined) return fail("ENOENT");
    if (!canRead(node, domid)) return fail("EACCES");
    return ok(node.value);
  }

  /** Creates `path` and missing parents; returns the node. Parents need write access. */
  private create(path: string, domid: number): Outcome<FakeNode> {
    let node = this.root;
    for (const name of splitPath(path)) {
      let child = node.children.get(name);
      if (child === undefined) {
        if (!canWrite(node, domid)) return fail("EACCES");
        // New nodes inherit the parent's permissions; an unprivileged creator becomes the owner.
        const perms = node.perms.map((p) => ({ ...p }));
        const owner = perms[0];
        if (domid !== 0 && owner !== undefined) owner.domid = domid;
        child = newNode(perms);
        node.children.set(name, child);
      }
      node = child;
    }
    return ok(node);
  }

  write(path: string, value: Buffer, domid: number): Outcome<undefined> {
    const existing = this.lookup(path);
    if (existing !== undefined) {
      if (!canWrite(existing, domid)) return fail("EACCES");
      existing.value = Buffer.from(value);
      return ok(undefined);
    }
    const created = this.create(path, domid);
    if (!created.ok) return fail(created.errno);
    created.value.value = Buffer.from(value);
    return ok(undefined);
  }

  /** Returns whether anything was created (no event otherwise). */
  mkdir(path: string, domid: number): Outcome<boolean> {
    if (this.lookup(path) !== undefined) return ok(false);
    const created = this.create(path, domid);
    return created.ok ? ok(true) : fail(created.errno);
  }

  /** Returns whether anything was removed. */
  rm(path: string, domid: number): Outcome<boolean> {
    if (path === "/") return fail("EINVAL");
    const names = splitPath(path);
    const leaf = names.pop();
    const parent = this.lookup(`/${names.join("/")}`);
    if (parent === undefined || leaf === undefined) return fail("ENOENT");
    const node = parent.children.get(leaf);
    if (node === undefined) return ok(false);
    if (!canWrite(node, domid)) return fail("EACCES");
    parent.children.delete(leaf);
    return ok(true);
  }

  directory(path: string, domid: number): Outcome<string[]> {
    const node = this.lookup(path);
    if (node === undefined) return fail("ENOENT");
    if (!canRead(node, domid)) return fail("EACCES");
    return ok([...node.children.keys()]);
  }

  getPerms(path: string, domid: number): Outcome<Permission[]> {
    const node = this.lookup(path);
    if (node === undefined) return fail("ENOENT");
    if (!canRead(node, domid)) return fail("EACCES");
    return ok(node.perms.map((p) => ({ ...p })));
  }

  setPerms(path: string, perms: Permission[], domid: number): Outcome<undefined> {
    const node = this.lookup(path);
    if (node === undefined) return fail("ENOENT");
    const owner = node.perms[0];
    // Only the owner (or dom0) may change permissions, as in cxenstored.
    if (domid !== 0 && owner?.domid !== domid) return fail("EACCES");
    if (perms.length === 0) return fail("EINVAL");
    node.perms = perms.map((p) => ({ ...p }));
    return ok(undefined);
  }
}

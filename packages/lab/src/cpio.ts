// A minimal writer of the "newc" cpio format the kernel unpacks as an initramfs.
// Written here so the lab needs no cpio binary on the host. Several archives may be
// concatenated: the kernel unpacks them in order, later files replacing earlier ones.
import { createReadStream, createWriteStream, lstatSync, readdirSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { Readable } from "node:stream";
import { createGzip } from "node:zlib";

const hex8 = (n: number): string => n.toString(16).padStart(8, "0");
const pad4 = (n: number): Buffer => Buffer.alloc((4 - (n % 4)) % 4);

function header(name: string, mode: number, size: number, ino: number, mtime: number, rdev: [number, number] = [0, 0]): Buffer {
  const nameBytes = Buffer.from(name + "\0");
  const fields = [ino, mode, 0, 0, 1, mtime, size, 0, 0, rdev[0], rdev[1], nameBytes.length, 0];
  const head = Buffer.from("070701" + fields.map(hex8).join(""), "ascii");
  const h = Buffer.concat([head, nameBytes]);
  return Buffer.concat([h, pad4(h.length)]);
}

/** Walks root and yields the archive's bytes; paths inside are relative ("bin/sh"). */
/** A character device node to create in the archive, e.g. dev/console (5, 1). */
export interface CharDevice {
  path: string;
  major: number;
  minor: number;
}

async function* entries(root: string, devices: CharDevice[]): AsyncGenerator<Buffer> {
  let ino = 1;
  const mtime = 0; // reproducible archives: the cache key already says what changed
  const walk = async function* (rel: string): AsyncGenerator<Buffer> {
    const names = readdirSync(join(root, rel)).sort();
    for (const n of names) {
      const r = rel ? `${rel}/${n}` : n;
      const st = lstatSync(join(root, r));
      if (st.isSymbolicLink()) {
        const target = Buffer.from(readlinkSync(join(root, r)));
        yield header(r, 0o120777, target.length, ino++, mtime);
        yield Buffer.concat([target, pad4(target.length)]);
      } else if (st.isDirectory()) {
        yield header(r, 0o040000 | (st.mode & 0o7777), 0, ino++, mtime);
        yield* walk(r);
      } else if (st.isFile()) {
        yield header(r, 0o100000 | (st.mode & 0o7777), st.size, ino++, mtime);
        for await (const chunk of createReadStream(join(root, r))) yield chunk as Buffer;
        yield pad4(st.size);
      }
    }
  };
  yield* walk("");
  // Device nodes after the walk, so their parent directories already exist when unpacked.
  for (const d of devices) yield header(d.path, 0o020600, 0, ino++, mtime, [d.major, d.minor]);
  yield header("TRAILER!!!", 0, 0, 0, 0);
}

/** Writes root as a gzip-compressed newc archive to file. */
export async function writeInitramfs(root: string, file: string, level = 1, devices: CharDevice[] = []): Promise<void> {
  await pipeline(Readable.from(entries(root, devices)), createGzip({ level }), createWriteStream(file));
}

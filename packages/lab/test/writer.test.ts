// The guest's data writer off the lab: compiled and run on a file, its records checked by
// verifyRecords; and the checker itself catches each kind of damage.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assetsDir } from "../src/paths";
import { parseWriterStatus, verifyRecords, WRITER_RECORD_BYTES } from "../src/writer";

describe("guest-writer (compiled on the host)", () => {
  let dir = "";
  let disk = Buffer.alloc(0);
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "writer-"));
    const bin = join(dir, "writer");
    const cc = spawnSync("gcc", ["-static", "-Os", "-s", "-Wall", "-Werror", "-o", bin, join(assetsDir, "guest-writer.c")], { encoding: "utf8" });
    expect(cc.stderr).toBe("");
    writeFileSync(join(dir, "disk"), Buffer.alloc(64 * WRITER_RECORD_BYTES));
    const run = spawnSync(bin, ["--device", join(dir, "disk"), "--interval-ms", "1"], { encoding: "utf8", timeout: 3000 });
    expect(run.stdout).toMatch(/WRITER-FULL acked=64/);
    disk = readFileSync(join(dir, "disk"));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  test("fills the disk with 64 records that all check out", () => {
    expect(verifyRecords(disk, 64)).toEqual([]);
  });

  test("the check finds a lost, a misplaced, a corrupted and a truncated record", () => {
    const d = Buffer.from(disk);
    d.fill(0, 3 * WRITER_RECORD_BYTES, 4 * WRITER_RECORD_BYTES); // lost
    disk.copy(d, 5 * WRITER_RECORD_BYTES, 6 * WRITER_RECORD_BYTES, 7 * WRITER_RECORD_BYTES); // record 6 where 5 belongs
    d.writeUInt8((d.readUInt8(7 * WRITER_RECORD_BYTES + 100) ^ 1), 7 * WRITER_RECORD_BYTES + 100); // a flipped bit
    expect(verifyRecords(d, 70)).toEqual([
      { seq: 3, why: "missing (zeros)" },
      { seq: 5, why: "holds record 6" },
      { seq: 7, why: "checksum mismatch" },
      ...[64, 65, 66, 67, 68, 69].map((seq) => ({ seq, why: "beyond the end of the disk" })),
    ]);
  });

  test("refuses bad options", () => {
    expect(spawnSync(join(dir, "writer"), ["--interval-ms", "0"]).status).toBe(2);
    expect(spawnSync(join(dir, "writer"), ["--nope"]).status).toBe(2);
  });
});

describe("parseWriterStatus", () => {
  test("reads the status line, whatever precedes it on the console", () => {
    const s = parseWriterStatus("WRITER-BEGIN req=a seq=1\r\n[ 3.1] xWRITER-STATUS acked=12 errors=0 last_errno=0 max_write_ms=41.250 slow=0 full=0 size=16777216\nWRITER-END req=a seq=1\n");
    expect(s).toEqual({ acked: 12, errors: 0, lastErrno: 0, maxWriteMs: 41.25, slow: 0, full: false, sizeBytes: 16777216 });
  });
  test("an answer without the line is an error", () => {
    expect(() => parseWriterStatus("WRITER-BEGIN req=a seq=1\nWRITER-END req=a seq=1\n")).toThrow(/no WRITER-STATUS/);
  });
});

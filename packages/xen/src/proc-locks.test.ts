// Parsing /proc/locks (pure): who holds and who waits for a lock on one file.
import { lockWaiters, parseProcLocks, splitDev } from "./proc-locks";

const SAMPLE = [
  "1: FLOCK  ADVISORY  WRITE 412 00:19:1234 0 EOF",
  "1: -> FLOCK  ADVISORY  WRITE 980 00:19:1234 0 EOF",
  "1: -> FLOCK  ADVISORY  WRITE 981 00:19:1234 0 EOF",
  "2: POSIX  ADVISORY  WRITE 77 fd:01:1234 0 0",
  "3: -> POSIX  ADVISORY  WRITE 78 fd:01:1234 0 0",
  "4: OFDLCK ADVISORY  READ  -1 00:06:9 0 EOF",
  "garbage",
  "",
].join("\n");

describe("/proc/locks", () => {
  it("parses holders and waiters with pid, device and inode", () => {
    const l = parseProcLocks(SAMPLE);
    expect(l).toHaveLength(6);
    expect(l[0]).toEqual({ blocked: false, kind: "FLOCK", pid: 412, major: 0, minor: 0x19, inode: 1234n });
    expect(l[1]).toMatchObject({ blocked: true, kind: "FLOCK", pid: 980 });
    expect(l[3]).toMatchObject({ blocked: false, kind: "POSIX", major: 0xfd, minor: 1 });
    expect(l[5]).toMatchObject({ kind: "OFDLCK", pid: -1 });
  });

  it("finds the waiters of one file only (same inode on another device does not count)", () => {
    const l = parseProcLocks(SAMPLE);
    // glibc's dev_t for 00:19 is 0x19; for fd:01 it is 0xfd01.
    expect(lockWaiters(l, 0x19n, 1234n)).toEqual([980, 981]);
    expect(lockWaiters(l, 0xfd01n, 1234n)).toEqual([78]);
    expect(lockWaiters(l, 0x19n, 1235n)).toEqual([]);
    expect(lockWaiters(l, 0x1an, 1234n)).toEqual([]);
  });

  it("splits glibc's dev_t into the kernel's major and minor (large ones too)", () => {
    expect(splitDev(0x803n)).toEqual({ major: 8, minor: 3 });
    // major 0x123, minor 0x45678: makedev puts the minor's high bits above the major's.
    expect(splitDev((0x123n << 8n) | 0x78n | (0x456n << 20n))).toEqual({ major: 0x123, minor: 0x45678 });
  });
});

// libxl's userdata lock file as an early sign of xl at work on a domain (userdata-watch.ts).
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { UserdataLockWatch, userdataLockDomid } from "../src/userdata-watch";

const UUID = "3f2a1b4c-5d6e-4f70-8192-a3b4c5d6e7f8";
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe("libxl userdata lock watch", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "fs-xenlib-"));
  });
  afterEach(() => { rmSync(dir, { recursive: true, force: true }); });

  it("parses libxl's lock file names (libxl__userdata_path), nothing else", () => {
    expect(userdataLockDomid(`userdata-l.7.${UUID}.domain-userdata-lock`)).toBe(7);
    expect(userdataLockDomid(`userdata-d.7.${UUID}.libxl-json`)).toBeUndefined();
    expect(userdataLockDomid(`userdata-l.x.${UUID}.domain-userdata-lock`)).toBeUndefined();
    expect(userdataLockDomid("suspend-evtchn-7.lock")).toBeUndefined();
  });

  it("reports a domain whose lock file libxl created (and unlinked), for holdMs, not other domains", async () => {
    let now = 1000;
    const w = new UserdataLockWatch({ dir, holdMs: 3000, now: () => now });
    w.start();
    try {
      expect(w.problem).toBeUndefined();
      const f = join(dir, `userdata-l.7.${UUID}.domain-userdata-lock`);
      writeFileSync(f, "");
      unlinkSync(f); // libxl__unlock_file unlinks it
      for (let i = 0; i < 200 && w.user(7) === undefined; i++) await sleep(5);
      expect(w.user(7)).toMatch(/userdata lock 0 ms ago/);
      expect(w.user(8)).toBeUndefined();
      now += 2999;
      expect(w.user(7)).toMatch(/2999 ms ago/);
      now += 2;
      expect(w.user(7)).toBeUndefined();
    } finally {
      w.close();
    }
  });

  it("a missing directory leaves a problem to log, and no throw", () => {
    const w = new UserdataLockWatch({ dir: join(dir, "nope") });
    w.start();
    expect(w.problem).toMatch(/cannot watch/);
    expect(w.user(1)).toBeUndefined();
    w.close();
  });
});

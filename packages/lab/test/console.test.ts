// The guest console checks Lab.createGuest retries on: the PVH panic of this lab, told apart from
// any other boot failure.
import { isTrampolinePanic } from "../src/console";

const PANIC = `[   14.862848] traps: PANIC: double fault, error_code: 0x0
[   14.870902]  <ENTRY_TRAMPOLINE>
[   14.870990]  ? 0xffffffff81400ac2
[   14.873430]  </ENTRY_TRAMPOLINE>
[   14.875979] Kernel panic - not syncing: Fatal exception in interrupt`;

describe("isTrampolinePanic", () => {
  it("is the double fault on the entry trampoline stack, whole or only its end in the tail", () => {
    expect(isTrampolinePanic(PANIC)).toBe(true);
    expect(isTrampolinePanic(PANIC.split("\n").slice(2).join("\n"))).toBe(true);
  });

  it("is not another panic, nor a boot that stopped without one", () => {
    expect(isTrampolinePanic("[    2.0] Kernel panic - not syncing: VFS: Unable to mount root fs")).toBe(false);
    expect(isTrampolinePanic("[    2.0] Run /init as init process")).toBe(false);
  });
});

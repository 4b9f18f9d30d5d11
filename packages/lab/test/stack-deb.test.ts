// debian/shlibs.local lines for a .deb built on this host for another stack's dom0.
import { shlibsLine } from "../src/stack-deb";

describe("shlibsLine", () => {
  it("names the package and the version that ship a soname", () => {
    expect(shlibsLine("libxenctrl.so.4.20", "libxenmisc4.20", "4.20.4+63-g7abfd2bce2-0+deb13u1")).toBe("libxenctrl 4.20 libxenmisc4.20 (>= 4.20.4+63-g7abfd2bce2-0+deb13u1)");
    expect(shlibsLine("libxenevtchn.so.1", "libxenevtchn1", "4.20.4-1")).toBe("libxenevtchn 1 libxenevtchn1 (>= 4.20.4-1)");
    // The loader has no soname version to match on.
    expect(shlibsLine("ld-linux-x86-64.so.2", "libc6", "2.41-12")).toBeUndefined();
  });
});

// The QEMU command line's choices that carry evidence: TCG threading by CPU model, which QEMU.
import { qemuBinary, qemuTcgThread } from "../src/qemu";

describe("qemuTcgThread", () => {
  const saved = process.env.FASTSUSPEND_QEMU_TCG_THREAD;
  afterEach(() => {
    if (saved === undefined) delete process.env.FASTSUSPEND_QEMU_TCG_THREAD;
    else process.env.FASTSUSPEND_QEMU_TCG_THREAD = saved;
  });

  it("is single-threaded for an SVM CPU model (nested SVM races under multi-threaded TCG) and multi-threaded otherwise", () => {
    delete process.env.FASTSUSPEND_QEMU_TCG_THREAD;
    expect(qemuTcgThread("Opteron_G3,+svm,+npt,-rdtscp")).toBe("single");
    expect(qemuTcgThread("Nehalem")).toBe("multi");
    expect(qemuTcgThread("Opteron_G3,-svm")).toBe("multi");
  });

  it("takes FASTSUSPEND_QEMU_TCG_THREAD over the default, and refuses anything but multi or single", () => {
    process.env.FASTSUSPEND_QEMU_TCG_THREAD = "multi";
    expect(qemuTcgThread("Opteron_G3,+svm,+npt")).toBe("multi");
    process.env.FASTSUSPEND_QEMU_TCG_THREAD = "single";
    expect(qemuTcgThread("Nehalem")).toBe("single");
    process.env.FASTSUSPEND_QEMU_TCG_THREAD = "two";
    expect(() => qemuTcgThread("Nehalem")).toThrow(/FASTSUSPEND_QEMU_TCG_THREAD="two"/);
  });
});

describe("qemuBinary", () => {
  const saved = process.env.FASTSUSPEND_QEMU_BINARY;
  afterEach(() => {
    if (saved === undefined) delete process.env.FASTSUSPEND_QEMU_BINARY;
    else process.env.FASTSUSPEND_QEMU_BINARY = saved;
  });

  it("is FASTSUSPEND_QEMU_BINARY when set (the patched build), and says how to get one that is missing", async () => {
    process.env.FASTSUSPEND_QEMU_BINARY = process.execPath; // any file that exists
    await expect(qemuBinary()).resolves.toBe(process.execPath);
    process.env.FASTSUSPEND_QEMU_BINARY = "/nonexistent/qemu-system-x86_64";
    await expect(qemuBinary()).rejects.toThrow(/FASTSUSPEND_QEMU_BINARY=\/nonexistent\/qemu-system-x86_64 does not exist/);
  });
});

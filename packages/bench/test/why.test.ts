import { whyFailed } from "../src/why";

describe("whyFailed", () => {
  it("says a dom0 command's failure with the last lines of its output, without the fix hint", () => {
    const e = new Error("dom0: `xl create /lab/guests/ts-stock.cfg` exited 3\n  fix: see its output below\nParsing config from x.cfg\nlibxl: error: a\n\nlibxl: error: b\nlibxl: error: c\n");
    expect(whyFailed(e)).toBe("dom0: `xl create /lab/guests/ts-stock.cfg` exited 3 (libxl: error: a / libxl: error: b / libxl: error: c)");
  });
  it("keeps the first error line when the last lines are only its clean-up (session 15: xl create exited 3)", () => {
    const e = new Error("dom0: `xl create /lab/guests/ts-stock.cfg` exited 3\n  fix: see its output below\nParsing config from x.cfg\nlibxl: error: libxl_dom.c:1: the cause\nlibxl: error: d\nlibxl: error: Unable to destroy guest\nlibxl: error: Destruction of domain failed\nXen free 1256 MB\n");
    expect(whyFailed(e)).toBe("dom0: `xl create /lab/guests/ts-stock.cfg` exited 3 (libxl: error: libxl_dom.c:1: the cause / ... / libxl: error: Unable to destroy guest / libxl: error: Destruction of domain failed / Xen free 1256 MB)");
  });
  it("says a one-line error as it is, and a thrown non-error too", () => {
    expect(whyFailed(new Error("no answer"))).toBe("no answer");
    expect(whyFailed("gone")).toBe("gone");
  });
});

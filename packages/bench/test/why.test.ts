import { whyFailed } from "../src/why";

describe("whyFailed", () => {
  it("says a dom0 command's failure with the last lines of its output, without the fix hint", () => {
    const e = new Error("dom0: `xl create /lab/guests/ts-stock.cfg` exited 3\n  fix: see its output below\nParsing config from x.cfg\nlibxl: error: a\n\nlibxl: error: b\nlibxl: error: c\n");
    expect(whyFailed(e)).toBe("dom0: `xl create /lab/guests/ts-stock.cfg` exited 3 (libxl: error: a / libxl: error: b / libxl: error: c)");
  });
  it("says a one-line error as it is, and a thrown non-error too", () => {
    expect(whyFailed(new Error("no answer"))).toBe("no answer");
    expect(whyFailed("gone")).toBe("gone");
  });
});

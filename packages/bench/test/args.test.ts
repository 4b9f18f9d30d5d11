// The host side's arguments: refused before anything boots; the seed's defaults.
import { UsageError } from "@fastsuspend/cli";

import { parseBenchHostArgs } from "../src";

describe("npm run bench arguments", () => {
  it("refuses bad flags before it boots anything", () => {
    expect(() => parseBenchHostArgs(["--cycles", "x"])).toThrow(UsageError);
    expect(() => parseBenchHostArgs(["--cycles", "x"])).toThrow(/--cycles must be an integer >= 1, got "x"/);
    expect(() => parseBenchHostArgs(["--no-such-flag"])).toThrow();
  });

  it("has the seed's defaults", () => {
    expect(parseBenchHostArgs([])).toEqual({ cycles: 100, intervalMs: 20, xlSave: 5, checkpointCount: 1000, stock: false, jsonFile: "results/bench.json" });
    expect(parseBenchHostArgs(["--cycles", "7", "--stock", "--paths", "a,b", "--json", "/tmp/x.json"])).toMatchObject({
      cycles: 7, stock: true, paths: "a,b", jsonFile: "/tmp/x.json",
    });
  });
});

// The host side's arguments: refused before anything boots; the seed's defaults.
import { UsageError } from "@fastsuspend/cli";

import { parseBenchHostArgs } from "../src";

describe("npm run bench arguments", () => {
  it("refuses bad flags before it boots anything", () => {
    expect(() => parseBenchHostArgs(["--cycles", "x"])).toThrow(UsageError);
    expect(() => parseBenchHostArgs(["--cycles", "x"])).toThrow(/--cycles must be an integer >= 1, got "x"/);
    expect(() => parseBenchHostArgs(["--no-such-flag"])).toThrow();
  });

  it("takes the long loop's count (0 skips it) and budget (at least 1 s)", () => {
    expect(parseBenchHostArgs(["--long-count", "0", "--long-seconds", "30"])).toMatchObject({ longCount: 0, longSeconds: 30 });
    expect(() => parseBenchHostArgs(["--long-seconds", "0"])).toThrow(/--long-seconds must be an integer >= 1, got "0"/);
    expect(() => parseBenchHostArgs(["--long-count", "1.5"])).toThrow(/--long-count must be an integer >= 0, got "1.5"/);
  });

  it("takes the toolstack runs per guest kernel (0 skips the table)", () => {
    expect(parseBenchHostArgs(["--toolstack", "0"])).toMatchObject({ toolstackRuns: 0 });
    expect(parseBenchHostArgs(["--remus-seconds", "0"])).toMatchObject({ remusSeconds: 0 });
    expect(() => parseBenchHostArgs(["--remus-seconds=-1"])).toThrow(/--remus-seconds must be an integer >= 0/);
    expect(() => parseBenchHostArgs(["--toolstack", "x"])).toThrow(/--toolstack must be an integer >= 0, got "x"/);
  });

  it("runs the PVH toolstack rows on Debian's Xen and the patched one unless told which (issue 14)", () => {
    expect(parseBenchHostArgs(["--toolstack-hypervisors", "patched"])).toMatchObject({ toolstackHypervisors: ["patched"] });
    expect(parseBenchHostArgs(["--toolstack-hypervisors", "patched,debian"])).toMatchObject({ toolstackHypervisors: ["patched", "debian"] });
    expect(() => parseBenchHostArgs(["--toolstack-hypervisors", "stock"])).toThrow(/--toolstack-hypervisors: unknown hypervisor "stock"; use debian, patched or both/);
    expect(() => parseBenchHostArgs(["--toolstack-hypervisors", ""])).toThrow(UsageError);
    expect(() => parseBenchHostArgs(["--toolstack-hypervisors", "debian,debian"])).toThrow(/names a hypervisor twice/);
  });

  it("boots trixie's lab unless --stack names another, and refuses an unknown stack before it boots", () => {
    expect(parseBenchHostArgs([])).toMatchObject({ stack: "trixie" });
    expect(parseBenchHostArgs(["--stack", "bookworm"])).toMatchObject({ stack: "bookworm" });
    expect(parseBenchHostArgs(["--stack", "trixie"])).toMatchObject({ stack: "trixie" });
    expect(parseBenchHostArgs(["--stack=trixie", "--stock"])).toMatchObject({ stack: "trixie", stock: true });
    expect(() => parseBenchHostArgs(["--stack", "sid"])).toThrow(UsageError);
    expect(() => parseBenchHostArgs(["--stack", "sid"])).toThrow(/--stack: unknown stack "sid" \(known: bookworm, trixie\); use --stack bookworm or --stack trixie/);
    expect(() => parseBenchHostArgs(["--stack"])).toThrow(); // a value is required
  });

  it("has the seed's defaults", () => {
    expect(parseBenchHostArgs([])).toEqual({
      cycles: 100, intervalMs: 20, xlSave: 5, checkpointCount: 1000, longCount: 10000, longSeconds: 600, toolstackRuns: 20, remusSeconds: 60, toolstackHypervisors: ["debian", "patched"], stock: false, stack: "trixie", output: "results/bench.json",
    });
    expect(parseBenchHostArgs(["--cycles", "7", "--stock", "--paths", "a,b", "--output", "/tmp/x.json"])).toMatchObject({
      cycles: 7, stock: true, paths: "a,b", output: "/tmp/x.json",
    });
  });
});

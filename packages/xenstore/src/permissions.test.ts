import { XenstoreInvalidArgumentError, XenstoreProtocolError } from "./errors";
import { formatPermission, parsePermission, parsePermissionList, validatePermissionList } from "./permissions";

describe("permissions", () => {
  it("formats and parses the four letters", () => {
    const cases = [
      ["n0", { domid: 0, access: "none" }],
      ["r1", { domid: 1, access: "read" }],
      ["w2", { domid: 2, access: "write" }],
      ["b3", { domid: 3, access: "both" }],
    ] as const;
    for (const [text, perm] of cases) {
      expect(formatPermission(perm)).toBe(text);
      expect(parsePermission(text)).toEqual(perm);
    }
  });

  it.each(["", "x1", "r", "r-1", "r01", "r65536", "r1 ", "R1"])("rejects %j", (text) => {
    expect(parsePermission(text)).toBeUndefined();
  });

  it("refuses bad lists in both directions", () => {
    expect(() => parsePermissionList([], "/p")).toThrow(XenstoreProtocolError);
    expect(() => parsePermissionList(["n0", "zz"], "/p")).toThrow(XenstoreProtocolError);
    expect(() => {
      validatePermissionList([]);
    }).toThrow(XenstoreInvalidArgumentError);
    expect(() => formatPermission({ domid: 1.5, access: "read" })).toThrow(XenstoreInvalidArgumentError);
  });
});

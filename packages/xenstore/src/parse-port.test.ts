import { EVTCHN_PORT_MAX, parsePort, parseStrictDecimal } from "./parse-port";

describe("parsePort (untrusted guest input)", () => {
  it.each([
    ["1", 1],
    ["42", 42],
    [String(EVTCHN_PORT_MAX), EVTCHN_PORT_MAX],
  ])("accepts %j", (text, expected) => {
    expect(parsePort(text)).toBe(expected);
    expect(parsePort(Buffer.from(text))).toBe(expected);
  });

  it.each([
    "",
    " ",
    " 5",
    "5 ",
    "5\n",
    "5\0",
    "+5",
    "-5",
    "05",
    "0",
    "0x10",
    "1e3",
    "5.0",
    "12abc",
    "NaN",
    "Infinity",
    String(EVTCHN_PORT_MAX + 1),
    "4294967296",
    "99999999999999999999",
    "٣", // a non-ASCII digit
  ])("rejects %j without NaN", (text) => {
    expect(parsePort(text)).toBeUndefined();
  });

  it("refuses a value outside [min, max]", () => {
    expect(parseStrictDecimal("10", 11, 20)).toBeUndefined();
    expect(parseStrictDecimal("20", 11, 20)).toBe(20);
  });
});

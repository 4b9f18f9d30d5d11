// The addon reads errno right after the call that failed, into a local, before any argument of the
// error is built: the arguments of one call are evaluated in an unspecified order, and building a
// string (std::to_string, operator+, a std::string from a literal, TakeLastLog()) runs library code
// that may change errno even when it succeeds. A static check: no errno inside an error call's
// argument list.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const NATIVE = join(__dirname, "native");

/** `file:line: call` of each ThrowXenError/MakeXenError call that passes errno itself. */
function errnoInErrorArguments(files: { name: string; text: string }[]): string[] {
  const bad: string[] = [];
  for (const { name, text } of files) {
    const re = /\b(ThrowXenError|MakeXenError)\s*\(/g;
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      // The argument list up to the matching parenthesis.
      let depth = 0;
      let end = m.index + m[0].length - 1;
      for (; end < text.length; end++) {
        if (text[end] === "(") depth++;
        else if (text[end] === ")" && --depth === 0) break;
      }
      const args = text.slice(m.index + m[0].length, end);
      if (/\berrno\b/.test(args)) bad.push(`${name}:${text.slice(0, m.index).split("\n").length}: ${m[1]}(${args.replace(/\s+/g, " ").slice(0, 60)}`);
    }
  }
  return bad;
}

describe("native addon errors", () => {
  it("capture errno into a local right after the failing call, never inside the error's argument list", () => {
    const files = readdirSync(NATIVE)
      .filter((f) => f.endsWith(".cc"))
      .map((name) => ({ name, text: readFileSync(join(NATIVE, name), "utf8") }));
    expect(files.length).toBeGreaterThan(3);
    expect(errnoInErrorArguments(files)).toEqual([]);
  });
});

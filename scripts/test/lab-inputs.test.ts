// scripts/lab-inputs.mjs's runner: how npm test builds the next stack's artefacts while a lab test
// run goes on (niced, its progress in a file), run as npm test runs it, in a node process of its own.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const INPUTS = join(__dirname, "..", "lab-inputs.mjs");

function run(background: boolean, file: string): { out: string; file: string } {
  const script = `
    import { runner } from ${JSON.stringify(INPUTS)};
    import { openSync, closeSync } from "node:fs";
    const fd = openSync(${JSON.stringify(file)}, "w");
    const r = await runner(${background ? "{ output: fd }" : "undefined"})("sh", ["-c", "echo niceness $(nice) >&2; [ -r /proc/self/autogroup ] && sed 's/.* nice /autogroup nice /' /proc/self/autogroup >&2; echo artefact"], { capture: true });
    closeSync(fd);
    console.log(JSON.stringify(r.out));`;
  const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", timeout: 20_000, stdio: ["ignore", "pipe", "pipe"] });
  return { out: JSON.parse(out.trim()) as string, file: readFileSync(file, "utf8") };
}

describe("runner", () => {
  test("in the background a build runs at nice 19 with its progress in the file, its stdout still captured", () => {
    const dir = mkdtempSync(join(tmpdir(), "fs-inputs-"));
    try {
      const base = Number(execFileSync("nice", { encoding: "utf8" }).trim());
      // Its session's autogroup is niced too: with autogroups, a task's nice counts only within its
      // session, and each session gets an equal share of the CPU (the build took half of it).
      const autogroup = existsSync("/proc/self/autogroup") ? "autogroup nice 19\n" : "";
      expect(run(true, join(dir, "bg.log"))).toEqual({ out: "artefact\n", file: `niceness ${Math.min(19, base + 19)}\n${autogroup}` });
      // In the foreground its progress goes to the terminal, not to the file.
      expect(run(false, join(dir, "fg.log"))).toEqual({ out: "artefact\n", file: "" });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

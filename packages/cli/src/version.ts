// `fastsuspend --version`: the version of the package this file was installed from.
import { readFileSync } from "node:fs";
import { join } from "node:path";

/**
 * Read at run time rather than imported: package.json sits outside tsc's rootDir. dist/ (installed,
 * and in the .deb, which keeps a slim package.json with the version) and src/ (tests) both sit one
 * level below it.
 */
export function cliVersion(): string {
  try {
    const meta = JSON.parse(readFileSync(join(__dirname, "..", "package.json"), "utf8")) as { version?: unknown };
    return typeof meta.version === "string" ? meta.version : "unknown";
  } catch {
    return "unknown";
  }
}

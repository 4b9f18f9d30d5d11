import { homedir } from "node:os";
import { join, resolve } from "node:path";

/** Heavy artefacts live outside the repo, keyed by content hash. Override with FASTSUSPEND_CACHE. */
export function cacheDir(): string {
  return process.env.FASTSUSPEND_CACHE ?? join(homedir(), ".cache", "fastsuspend");
}

/** Where this package's own files (pins, assets) are, from dist/ or src/. */
export const packageDir = resolve(__dirname, "..");
export const assetsDir = join(packageDir, "assets");
export const pinsFile = join(packageDir, "pins.json");
/** The monorepo root: shared into dom0 at /fastsuspend. */
export const repoDir = resolve(packageDir, "..", "..");

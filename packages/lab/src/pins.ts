import { readFileSync } from "node:fs";
import { pinsFile } from "./paths";

export interface Pins {
  suite: string;
  packages: Record<string, string>;
  dom0Kernel: string;
  hostPackages: string[];
}

export function loadPins(): Pins {
  return JSON.parse(readFileSync(pinsFile, "utf8")) as Pins;
}

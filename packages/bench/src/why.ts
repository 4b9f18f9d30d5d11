// What the bench says of a part that failed and was left out: the error's first line and the
// last lines of what came with it (a dom0 command's stderr, e.g. why `xl create` exited 3), not
// the lab's fix hint.
const SAID_LINES = 3;

export function whyFailed(e: unknown): string {
  const lines = (e instanceof Error ? e.message : String(e)).split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("fix:"));
  const [first = "", ...rest] = lines;
  return rest.length === 0 ? first : `${first} (${rest.slice(-SAID_LINES).join(" / ")})`;
}

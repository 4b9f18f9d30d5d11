// What the bench says of a part that failed and was left out: the error's first line, the first
// line that says "error" (libxl's first error is the cause; the ones after it are often only its
// clean-up failing: session 15's bench said "Unable to destroy guest" and lost why `xl create`
// exited 3) and the last lines of what came with it, not the lab's fix hint.
const SAID_LINES = 3;

export function whyFailed(e: unknown): string {
  const lines = (e instanceof Error ? e.message : String(e)).split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("fix:"));
  const [first = "", ...rest] = lines;
  if (rest.length === 0) return first;
  const last = rest.slice(-SAID_LINES);
  const cause = rest.slice(0, -SAID_LINES).find((l) => /error/i.test(l));
  return `${first} (${[...(cause === undefined ? [] : [cause, "..."]), ...last].join(" / ")})`;
}

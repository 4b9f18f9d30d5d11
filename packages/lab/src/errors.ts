/** An error of the lab that says what went wrong and what to do about it. */
export class LabError extends Error {
  constructor(
    message: string,
    /** What the user should do to fix it. */
    readonly fix: string,
    /** Extra detail such as the last console lines. */
    readonly detail?: string,
  ) {
    super(`${message}\n  fix: ${fix}${detail ? `\n${detail}` : ""}`);
    this.name = "LabError";
  }
}

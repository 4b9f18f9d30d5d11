// The domid bound: one definition, used by the lock, the daemon's request parser and the CLI.
import { DOMID_FIRST_RESERVED, DOMID_MAX, isDomid } from "./constants";

it("a domid is an integer in [0, DOMID_FIRST_RESERVED - 1]", () => {
  expect(DOMID_MAX).toBe(0x7fef);
  expect([0, 1, DOMID_MAX].map(isDomid)).toEqual([true, true, true]);
  expect([-1, DOMID_FIRST_RESERVED, 0xffff, 1.5, Number.NaN, "3", null, undefined].map(isDomid)).toEqual(Array(8).fill(false));
});

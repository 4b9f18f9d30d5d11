// The PVH section's turns: every guest's share of a row per round, the order rotated, so that a
// host whose speed drifts over minutes does not favour the guest measured first.
import { PVH_ROUNDS, RUNS_PER_TURN, repeatedRounds, rotated, shareOf } from "../src/pvh";

describe("the PVH section's rounds", () => {
  it("splits a row's runs or seconds over the rounds, the first rounds taking the remainder, the sum kept", () => {
    expect([0, 1, 2].map((r) => shareOf(20, 3, r))).toEqual([7, 7, 6]);
    expect([0, 1, 2].map((r) => shareOf(60, 3, r))).toEqual([20, 20, 20]);
    expect([0, 1, 2].map((r) => shareOf(2, 3, r))).toEqual([1, 1, 0]);
    for (const total of [0, 1, 5, 20, 61]) expect([...Array(PVH_ROUNDS).keys()].reduce((t, r) => t + shareOf(total, PVH_ROUNDS, r), 0)).toBe(total);
  });

  it("rotates the guests so that each goes first in one round", () => {
    const g = ["stock", "patched", "fast"];
    expect([0, 1, 2].map((r) => rotated(g, r)[0])).toEqual(["stock", "patched", "fast"]);
    expect(rotated(g, 1)).toEqual(["patched", "fast", "stock"]);
    expect(rotated([], 2)).toEqual([]);
  });

  it("gives a repeated row more rounds than PVH_ROUNDS when a turn would hold more than RUNS_PER_TURN runs", () => {
    // 20 migrations in 3 rounds were 7 a turn (~70 s each): a guest waited paused over four turns.
    expect(repeatedRounds(20)).toBe(7);
    expect([...Array(repeatedRounds(20)).keys()].map((r) => shareOf(20, repeatedRounds(20), r))).toEqual([3, 3, 3, 3, 3, 3, 2]);
    expect(repeatedRounds(6)).toBe(PVH_ROUNDS);
    expect(repeatedRounds(0)).toBe(PVH_ROUNDS);
    for (const runs of [1, 9, 10, 20, 100]) expect(Math.max(...[...Array(repeatedRounds(runs)).keys()].map((r) => shareOf(runs, repeatedRounds(runs), r)))).toBeLessThanOrEqual(RUNS_PER_TURN);
  });
});

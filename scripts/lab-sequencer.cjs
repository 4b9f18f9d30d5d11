// The order of the lab test files: fixed, the same on every machine. They share one dom0, so what
// one leaves there is what the next starts from; Jest's default order comes from its timing cache
// (slowest first) or, without one, from file sizes, and so differed between machines: session 11's
// official CI ran guest-data right after daemon.lab and failed there, while every local run had
// guest-data first (cached as the slowest) and passed. This is the local order, slowest first.
const Sequencer = require("@jest/test-sequencer").default;
const { order } = require("./lab-tests.json");

class LabSequencer extends Sequencer {
  sort(tests) {
    const rank = (path) => {
      const i = order.findIndex((f) => path.endsWith(f));
      return i < 0 ? order.length : i; // a file not in the list (FASTSUSPEND_LAB_TESTS=all): last
    };
    return [...tests].sort((a, b) => rank(a.path) - rank(b.path) || a.path.localeCompare(b.path));
  }
}

module.exports = LabSequencer;

import { FakeXen } from "./testing";
import { describeXenContract } from "./testing/contract";

const fake = new FakeXen();
const guest = fake.createGuest({ suspendDelayMs: 5 });

describeXenContract("fake", () => fake.binding(0), {
  selfDomid: 0,
  guestDomid: guest.domid,
  requestSuspend: (domid) => fake.guest(domid).requestSuspend(),
  timeoutMs: 500,
  suspendLockExists: (path) => fake.suspendLocks.exists(path),
  holdSuspendLockElsewhere: (domid) => {
    const release = fake.holdSuspendLockElsewhere(domid);
    return Promise.resolve(() => {
      release();
      return Promise.resolve();
    });
  },
  flockElsewhere: (path, mode) => {
    if (mode === "wait") {
      const giveUp = fake.suspendLocks.addWaiter(path);
      return Promise.resolve(() => {
        giveUp();
        return Promise.resolve();
      });
    }
    fake.suspendLocks.acquire(path, "libxl", "flock(LOCK_EX|LOCK_NB)");
    return Promise.resolve(() => {
      if (fake.suspendLocks.holder(path) === "libxl") fake.suspendLocks.release(path);
      return Promise.resolve();
    });
  },
});

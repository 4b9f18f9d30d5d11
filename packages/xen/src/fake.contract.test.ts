import { FakeXen } from "./fake";
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
});

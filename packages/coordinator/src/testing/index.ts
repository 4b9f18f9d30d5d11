// Test helpers: a fake Xen host where the coordinator's requests have real-looking effects.
export { FakeWorld, type FakeGuestOptions, type FakeWorldGuest, type FakeChannelKind } from "./fake-world";

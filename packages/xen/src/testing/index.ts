// The fake binding for unit tests of pure logic: the same XenBinding interface the native binding
// implements, run through the same contract suite (contract.ts). Not part of the package's main
// entry, so that nothing shipped loads it (the .deb leaves testing/ out).
export { FakeXen, FakeGuest, FakeXenBinding, FakeSuspendLocks } from "./fake";

// Test helpers for this package and for other packages' unit tests:
// import from "@fastsuspend/xenstore/testing".
export { FakeXenstored, type FakeXenstoredOptions, type RecordedRequest } from "./fake-xenstored";
export { FakeStore, isChildOf, isValidPath, type FakeNode } from "./fake-store";
export { describeXenstoreContract, waitForEvent, type ContractOptions } from "./contract";

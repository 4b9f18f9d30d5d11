import { XenstoreClient } from "../client/client";
import { describeXenstoreContract } from "./contract";
import { FakeXenstored } from "./fake-xenstored";

// The contract suite against the fake, over a real unix socket and over the
// in-memory transport, with replies split into 3-byte chunks in one variant.

let fake: FakeXenstored;
let chunked: FakeXenstored;

beforeAll(async () => {
  fake = await FakeXenstored.start();
  chunked = await FakeXenstored.start({ replyChunkSize: 3 });
});

afterAll(async () => {
  await fake.stop();
  await chunked.stop();
});

describeXenstoreContract("fake over a unix socket", () => fake.connect());
describeXenstoreContract("fake with replies split in 3-byte chunks", () => chunked.connect());
describeXenstoreContract("fake over the in-memory transport", () =>
  XenstoreClient.connect({ transport: fake.memoryTransport() }),
);

// The contract suite against a real xenstored, inside the lab's dom0. jest.config.cjs includes this
// file only where a xenstored can be there (/dev/xen exists) or FASTSUSPEND_REQUIRE_XEN=1 insists;
// then a missing xenstored fails loudly instead of passing by not running.
// Env: XENSTORED_PATH picks the transport (the unix socket by default, /dev/xen/xenbus for the
// device), FASTSUSPEND_GUEST_DOMID adds the tests that need a guest, FASTSUSPEND_XENSTORED names
// the flavour in the report.
import { XenstoreClient } from "./client/client";
import { describeXenstoreContract } from "./testing/contract";

const guest = process.env.FASTSUSPEND_GUEST_DOMID;
describeXenstoreContract(
  `real ${process.env.FASTSUSPEND_XENSTORED ?? "xenstored"} via ${process.env.XENSTORED_PATH ?? "the default endpoint"}`,
  () => XenstoreClient.connect(),
  { guestDomid: guest ? Number(guest) : undefined, eventTimeoutMs: 15_000 },
);

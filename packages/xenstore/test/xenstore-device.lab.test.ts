// The xenstore client's contract suite over the kernel's /dev/xen/xenbus device in dom0, against
// real oxenstored and cxenstored. The transport keeps one request in flight (see its class comment:
// Linux 6.1's device mangles pipelined requests when the ring is full).
import { describeXenstoreOnLabs } from "./lab-contract";

describeXenstoreOnLabs("xenbus device", "/dev/xen/xenbus", { latency: false });

// The xenstore client's contract suite over the kernel's /dev/xen/xenbus device in dom0, against
// real oxenstored and cxenstored. Known failure: pipelined write-then-read of one node gives ENOENT.
import { describeXenstoreOnLabs } from "./lab-contract";

describeXenstoreOnLabs("xenbus device", "/dev/xen/xenbus", { latency: false });

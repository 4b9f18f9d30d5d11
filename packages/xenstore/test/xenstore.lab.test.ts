// The xenstore client's contract suite against real oxenstored and cxenstored, run by Jest inside
// each lab's dom0 over the unix socket, plus its latency benchmark. The /dev/xen/xenbus run is in
// xenstore-device.lab.test.ts.
import { describeXenstoreOnLabs } from "./lab-contract";

describeXenstoreOnLabs("unix socket", "/run/xenstored/socket", { latency: true });

// Run under LD_PRELOAD=<xenevtchn stub>: drives the addon's EvtchnHandle poller (uv_poll, drain,
// close from inside the callback, unref) and prints one JSON line. Used by src/native.poller.test.ts.
const path = require("node:path");
const mod = { exports: {} };
process.dlopen(mod, path.join(__dirname, "..", "..", "build", "Release", "xen.node"));
const addon = mod.exports;
const out = {};
const h = new addon.EvtchnHandle();
const p = h.bindUnboundPort(0);
const got = [];
let closeInCallback = false;
h.startPolling((err, port) => {
  got.push(err ? `err:${err.message}` : port);
  if (closeInCallback) h.close();
});
h.notify(p);
h.notify(p + 100);
h.notify(p);
setTimeout(() => {
  out.events = got.slice();
  out.statsOpen = addon.stats();
  try { h.notify(0); } catch (e) { out.notify0 = { code: e.code, call: e.call, message: e.message }; }
  closeInCallback = true;
  h.notify(p);
  h.notify(p);
  setTimeout(() => {
    out.afterCloseEvents = got.length - out.events.length;
    out.closed = h.isClosed();
    out.statsClosed = addon.stats();
    try { h.notify(p); } catch (e) { out.closedNotify = e.code; }
    const h2 = new addon.EvtchnHandle();
    h2.bindVirq(3);
    h2.startPolling(() => {});
    h2.unref(); // must not keep the process alive
    process.stdout.write(`${JSON.stringify(out)}\n`);
  }, 30);
}, 30);

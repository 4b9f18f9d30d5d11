#!/usr/bin/env node
// The lab's agent inside dom0: runs commands for the host over a virtio-serial port.
// Plain JavaScript with no dependencies, so it runs on the bare Node.js copied into the initramfs.
// Protocol: one JSON object per line each way.
//   host -> agent: {id, op:"exec", argv, cwd?, env?, timeoutMs?, stdin?} | {id, op:"ping"} | {id, op:"kill", target}
//   agent -> host: {id, chunk:"stdout"|"stderr", data} while running, then {id, done:true, code, signal, timedOut, ms}
"use strict";
const fs = require("node:fs");
const { spawn } = require("node:child_process");

const portPath = process.argv[2];
if (!portPath) {
  console.error("usage: agent.cjs /dev/vportNpM");
  process.exit(2);
}
const fd = fs.openSync(portPath, "r+");
const running = new Map();

// Writes go out one at a time; a write that fails (host side disconnected) is dropped, since the
// host that asked is gone. Streams are not used: a virtio port reads EOF whenever the host side
// is closed, and a stream would end there for good.
const queue = [];
let writing = false;
function pump() {
  if (writing || queue.length === 0) return;
  writing = true;
  const buf = queue.shift();
  fs.write(fd, buf, 0, buf.length, null, (err, n) => {
    writing = false;
    if (!err && n < buf.length) queue.unshift(buf.subarray(n));
    pump();
  });
}
function send(msg) {
  queue.push(Buffer.from(JSON.stringify(msg) + "\n"));
  pump();
}


function runExec(req) {
  const started = process.hrtime.bigint();
  let child;
  try {
    child = spawn(req.argv[0], req.argv.slice(1), {
      cwd: req.cwd || "/",
      env: { ...process.env, ...(req.env || {}) },
      stdio: ["pipe", "pipe", "pipe"],
      detached: true, // own process group, so a timeout kills the whole tree
    });
  } catch (err) {
    send({ id: req.id, done: true, code: 127, signal: null, timedOut: false, ms: 0, error: String(err) });
    return;
  }
  running.set(req.id, child);
  let timedOut = false;
  const timer = req.timeoutMs
    ? setTimeout(() => {
        timedOut = true;
        try { process.kill(-child.pid, "SIGKILL"); } catch { /* already gone */ }
      }, req.timeoutMs)
    : undefined;
  child.stdout.on("data", (b) => send({ id: req.id, chunk: "stdout", data: b.toString("base64") }));
  child.stderr.on("data", (b) => send({ id: req.id, chunk: "stderr", data: b.toString("base64") }));
  child.on("error", (err) => send({ id: req.id, chunk: "stderr", data: Buffer.from(String(err) + "\n").toString("base64") }));
  child.on("close", (code, signal) => {
    if (timer) clearTimeout(timer);
    running.delete(req.id);
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    send({ id: req.id, done: true, code: code === null ? -1 : code, signal, timedOut, ms });
  });
  if (req.stdin) child.stdin.end(Buffer.from(req.stdin, "base64"));
  else child.stdin.end();
}

function handle(line) {
  let req;
  try {
    req = JSON.parse(line);
  } catch {
    return; // a partial line left by a host client that went away: resynchronise on the next newline
  }
  if (req.op === "ping") send({ id: req.id, done: true, code: 0, pong: true, uptime: process.uptime() });
  else if (req.op === "exec" && Array.isArray(req.argv) && req.argv.length > 0) runExec(req);
  else if (req.op === "kill") {
    const child = running.get(req.target);
    if (child) try { process.kill(-child.pid, "SIGKILL"); } catch { /* gone */ }
    send({ id: req.id, done: true, code: 0 });
  } else send({ id: req.id, done: true, code: 2, error: "bad request" });
}

let buf = "";
const chunk = Buffer.alloc(64 * 1024);
function readLoop() {
  fs.read(fd, chunk, 0, chunk.length, null, (err, n) => {
    if (err || n === 0) {
      // No host connected (EOF) or a transient error: look again shortly.
      setTimeout(readLoop, 50);
      return;
    }
    buf += chunk.subarray(0, n).toString("utf8");
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (line) handle(line);
    }
    readLoop();
  });
}
readLoop();
console.log("FASTSUSPEND-AGENT-READY");

#!/usr/bin/env node
// Sends the bench/lib/syslog-mix.mjs datagrams round-robin to 127.0.0.1:<port> at <rate> per second
// for <seconds>, paced per millisecond, from a connected UDP socket; prints {"sent":n,"ms":...}.
// Several senders in parallel pass their index, so each starts at a different place in the mix.
// Bounded: rate × seconds datagrams, and it exits after seconds + 10 s whatever happens.
//   node udp-blast.mjs <port> <rate> <seconds> [index] [mix.json]
import dgram from "node:dgram";
import { readFileSync } from "node:fs";

const [port, rate, seconds, index = 0] = process.argv.slice(2, 6).map(Number);
const mixFile = process.argv[6];
// The mix from a file the benchmark wrote once (base64 JSON array), else built here.
const mix = mixFile ? JSON.parse(readFileSync(mixFile, "utf8")).map((b) => Buffer.from(b, "base64")) : (await import("./syslog-mix.mjs")).syslogMix();
const sock = dgram.createSocket({ type: "udp4", sendBufferSize: 4 << 20 });
sock.on("error", () => {});
await new Promise((r) => sock.connect(port, "127.0.0.1", r));
const total = Math.round(rate * seconds);
let sent = 0;
const t0 = performance.now();
// Past its time (a starved machine), it reports what it sent, marked, and exits 4.
setTimeout(() => {
  process.stdout.write(JSON.stringify({ sent, ms: performance.now() - t0, timedOut: true }) + "\n");
  process.exit(4);
}, (seconds + 10) * 1000).unref();
await new Promise((resolve) => {
  const step = () => {
    // Everything due by now (a late tick catches up), at most 2 ms worth ahead.
    const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * rate));
    while (sent < due) sock.send(mix[(sent++ + index * 37) % mix.length]);
    if (sent >= total) return resolve();
    setImmediate(step);
  };
  step();
});
// Let the last sends reach the kernel before reporting.
await new Promise((r) => setTimeout(r, 50));
process.stdout.write(JSON.stringify({ sent, ms: performance.now() - t0 - 50 }) + "\n");
sock.close();

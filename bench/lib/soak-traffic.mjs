#!/usr/bin/env node
// The soak's steady load, in its own process so the processes under test do none of its work:
//   - packets for every device: UDP datagrams of `packetBytes` from 127.0.0.1 to a sink bound on
//     the device's own address, `bytesPerDevicePerS` each, so the agent's per-device capture (the
//     `host <device>` filter) sees a steady stream and its ring rotates;
//   - a trickle of unrelated syslog (bench/lib/syslog-mix.mjs, which names no configured device)
//     to the orchestrator's syslog port, `syslogPerS` datagrams a second.
// Reads its settings as one JSON object on stdin, prints {"ready":true} once the sinks are bound,
// runs until stdin closes (then prints its counters and exits), and at most `maxSeconds`.
import { createSocket } from "node:dgram";
import { syslogMix } from "./syslog-mix.mjs";

let input = "";
process.stdin.setEncoding("utf8");
const settings = await new Promise((res) => {
  const onData = (d) => {
    input += d;
    const i = input.indexOf("\n");
    if (i >= 0) {
      process.stdin.off("data", onData);
      res(JSON.parse(input.slice(0, i)));
    }
  };
  process.stdin.on("data", onData);
});
const { devices, bytesPerDevicePerS, packetBytes, syslogPort, syslogPerS, maxSeconds } = settings;
setTimeout(() => finish(4), maxSeconds * 1000).unref();

// Sinks: read and discarded, so the kernel never answers with ICMP port-unreachable.
const sinks = [];
let received = 0;
for (const address of devices) {
  const s = createSocket("udp4");
  s.on("message", () => received++);
  s.on("error", () => {});
  await new Promise((r) => s.bind(0, address, r));
  sinks.push({ address, port: s.address().port, socket: s });
}
const out = createSocket({ type: "udp4", sendBufferSize: 4 << 20 });
out.on("error", () => {});
await new Promise((r) => out.bind(0, "127.0.0.1", r));
const mix = syslogMix();
const payload = Buffer.alloc(packetBytes, 0x5a);

const TICK_MS = 100;
const t0 = performance.now();
let packets = 0;
let syslog = 0;
let skipped = 0;
const perDevicePps = bytesPerDevicePerS / packetBytes;
const tick = setInterval(() => {
  const s = (performance.now() - t0) / 1000;
  // Paced against the start: every device is due floor(s × pps) packets, round robin.
  const due = Math.floor(s * perDevicePps * sinks.length);
  for (let n = 0; packets < due && n < 5000; n++) {
    // Bounded queue: a stalled machine skips packets rather than piling them up in this process.
    if (out.getSendQueueCount() > 2000) {
      skipped += due - packets;
      packets = due;
      break;
    }
    const k = sinks[packets % sinks.length];
    out.send(payload, k.port, k.address);
    packets++;
  }
  const dueSyslog = Math.floor(s * syslogPerS);
  for (; syslog < dueSyslog; syslog++) out.send(mix[syslog % mix.length], syslogPort, "127.0.0.1");
}, TICK_MS);

function finish(code = 0) {
  clearInterval(tick);
  process.stdout.write(JSON.stringify({ packets: packets - skipped, skipped, received, syslog, seconds: (performance.now() - t0) / 1000 }) + "\n", () => process.exit(code));
}
process.stdin.on("end", () => finish(0));
process.stdin.resume();
process.on("SIGTERM", () => finish(0));
process.stdout.write(JSON.stringify({ ready: true, sinks: sinks.length }) + "\n");

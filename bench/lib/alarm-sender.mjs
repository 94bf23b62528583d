#!/usr/bin/env node
// Sends one OVOC "Connection Lost" alarm per device address (read as a JSON array on stdin) to
// 127.0.0.1:<port> over UDP from its own process, so the orchestrator's process does no sending
// work: one every <intervalMs>, or with intervalMs 0 a burst spread evenly over <burstMs> (default
// 20; 0: back to back). Prints {"sent":n,"ms":...,"at":{address: epoch ms}} (each alarm's send
// time, performance.timeOrigin-based like the orchestrator's hooks) and exits; at most 120 s.
//   node alarm-sender.mjs <port> <intervalMs> [burstMs]
import dgram from "node:dgram";
import { ovocConnectionLostAlarm } from "@capsync/emulators";

const [port, intervalMs, burstMs = 20] = process.argv.slice(2).map(Number);
setTimeout(() => process.exit(4), 120_000).unref();
let input = "";
for await (const c of process.stdin) input += c;
const addresses = JSON.parse(input);
// Built before the clock starts, and sent from one connected socket without waiting for each
// send's callback: a burst of a thousand fits in 20 ms (awaiting each send took ~60 ms).
const messages = addresses.map((a) => ovocConnectionLostAlarm({ deviceIp: a }));
const sock = dgram.createSocket({ type: "udp4", sendBufferSize: 4 << 20 });
let errors = 0;
sock.on("error", () => errors++);
await new Promise((r) => sock.connect(port, "127.0.0.1", r));
const spacing = intervalMs > 0 ? intervalMs : burstMs / Math.max(1, messages.length);
const at = {};
const t0 = performance.now();
for (let i = 0; i < messages.length; ) {
  // Everything due by now (paced against the start, so a late turn catches up), then yield.
  const now = performance.now();
  while (i < messages.length && t0 + i * spacing <= now) {
    at[addresses[i]] = performance.timeOrigin + performance.now();
    sock.send(messages[i]);
    i++;
  }
  if (i >= messages.length) break;
  const wait = t0 + i * spacing - performance.now();
  await new Promise((r) => (wait > 2 ? setTimeout(r, wait - 1) : setImmediate(r)));
}
const ms = performance.now() - t0;
// Let the sends leave before closing.
while (sock.getSendQueueCount() > 0) await new Promise((r) => setImmediate(r));
sock.close();
process.stdout.write(JSON.stringify({ sent: messages.length - errors, ms, at }) + "\n");

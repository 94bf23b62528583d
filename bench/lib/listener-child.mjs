#!/usr/bin/env node
// capsync's syslog listener alone in its own process (as in the orchestrator: default matchers,
// 1000 configured devices, default receive buffer and queues), on 127.0.0.1:<free port>.
// `inline` as first argument reads the socket on the main thread (readerThread: false) instead of
// the reader thread. Prints {"port":n}; each "report" line on stdin is answered, once both lanes
// are empty, with the listener's counters, the kernel's drops on its port and this process's CPU
// seconds (all threads). Exits when stdin closes, and after 600 s in any case.
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { SyslogListener } from "@capsync/cpe-capture/triggers/listener";
import { MIX_DEVICES } from "./syslog-mix.mjs";

setTimeout(() => process.exit(4), 600_000).unref();
const readerThread = process.argv[2] !== "inline";
let events = 0;
const listener = new SyslogListener({ onEvent: () => events++, devices: MIX_DEVICES, udp: { address: "127.0.0.1", port: 0, readerThread } });
const a = await listener.listen();
process.stdout.write(JSON.stringify({ port: a.udp.port, recvBufferSize: listener.stats().recvBufferSize }) + "\n");
const hexPort = `:${a.udp.port.toString(16).toUpperCase().padStart(4, "0")}`;
/** Bytes waiting in the socket's kernel receive queue (/proc/net/udp rx_queue). */
function rxQueue() {
  for (const line of readFileSync("/proc/net/udp", "utf8").split("\n").slice(1)) {
    const c = line.trim().split(/\s+/);
    if (c.length >= 13 && c[1].endsWith(hexPort)) return parseInt(c[4].split(":")[1], 16);
  }
  return 0;
}
for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() !== "report") continue;
  // Everything sent so far read and handled: the kernel queue empty, then the lanes (at most 5 s).
  for (const until = performance.now() + 5000; rxQueue() > 0 && performance.now() < until; ) await new Promise((r) => setTimeout(r, 5));
  await listener.whenIdle();
  const cpu = process.cpuUsage();
  process.stdout.write(JSON.stringify({ ...listener.stats(), events, kernelDrops: await listener.kernelDrops(), cpuS: (cpu.user + cpu.system) / 1e6 }) + "\n");
}
await listener.close();
process.exit(0);

#!/usr/bin/env node
// capsync's syslog listener alone in its own process (as in the orchestrator: default matchers,
// 1000 configured devices, default receive buffer and queues), on 127.0.0.1:<free port>.
// Prints {"port":n}; each "report" line on stdin is answered, once both lanes are empty, with the
// listener's counters, the kernel's drops on its port and this process's CPU seconds. Exits when
// stdin closes, and after 600 s in any case.
import { createInterface } from "node:readline";
import { SyslogListener } from "@capsync/cpe-capture/triggers/listener";
import { MIX_DEVICES } from "./syslog-mix.mjs";

setTimeout(() => process.exit(4), 600_000).unref();
let events = 0;
const listener = new SyslogListener({ onEvent: () => events++, devices: MIX_DEVICES, udp: { address: "127.0.0.1", port: 0 } });
const a = await listener.listen();
process.stdout.write(JSON.stringify({ port: a.udp.port }) + "\n");
for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() !== "report") continue;
  await listener.whenIdle();
  const cpu = process.cpuUsage();
  process.stdout.write(JSON.stringify({ ...listener.stats(), events, kernelDrops: await listener.kernelDrops(), cpuS: (cpu.user + cpu.system) / 1e6 }) + "\n");
}
await listener.close();
process.exit(0);

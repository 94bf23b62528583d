#!/usr/bin/env node
// Sends one OVOC "Connection Lost" alarm per device address (read as a JSON array on stdin) to
// 127.0.0.1:<port> over UDP, one every <intervalMs> (0: back to back), from its own process so the
// orchestrator's process does no sending work. Prints {"sent":n,"ms":...,"at":{address: epoch ms}}
// (each alarm's send time, performance.timeOrigin-based like the orchestrator's hooks) and exits;
// at most 120 s.
//   node alarm-sender.mjs <port> <intervalMs>
import { SyslogSender, ovocConnectionLostAlarm } from "@capsync/emulators";

const [port, intervalMs] = process.argv.slice(2).map(Number);
setTimeout(() => process.exit(4), 120_000).unref();
let input = "";
for await (const c of process.stdin) input += c;
const addresses = JSON.parse(input);
const sender = await SyslogSender.open({ host: "127.0.0.1", port });
const messages = addresses.map((a) => ovocConnectionLostAlarm({ deviceIp: a }));
const t0 = performance.now();
const at = {};
for (const [i, m] of messages.entries()) {
  at[addresses[i]] = performance.timeOrigin + performance.now();
  await sender.send(m);
  if (intervalMs > 0) {
    // Paced against the start, so a slow send does not stretch the whole series.
    const due = t0 + (i + 1) * intervalMs;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
}
await sender.close();
process.stdout.write(JSON.stringify({ sent: messages.length, ms: performance.now() - t0, at }) + "\n");

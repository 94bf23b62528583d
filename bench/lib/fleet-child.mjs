#!/usr/bin/env node
// An emulated AudioCodes fleet in its own process, so the orchestrator's process (CPU, RSS) holds
// only the orchestrator. Prints one JSON line {devices:[...]} when every device listens, then
// runs until stdin closes or SIGTERM, and at most MAX_S seconds in any case.
// REST latency is the emulator's own `latencyMs` (before every answer). SFTP latency: a TCP relay
// in front of each device's SFTP port holds every new session for the same latency before it
// reaches the device (one "request" per download).
//   node fleet-child.mjs <devices> <latencyMs> <firstAddress> [maxSeconds] [captureBytes]
import net from "node:net";
import { startAudioCodesFleet } from "@capsync/emulators";

const [n, latencyMs, first, maxS = "600", captureBytes = "0"] = process.argv.slice(2);
const guard = setTimeout(() => process.exit(4), Number(maxS) * 1000);
guard.unref();
const fleet = await startAudioCodesFleet(Number(n), {
  firstAddress: first,
  username: "Admin",
  password: "bench-pw",
  latencyMs: Number(latencyMs),
  concurrency: 100,
  capture: { kind: "synthetic", packetsPerSecond: 5, ...(Number(captureBytes) > 0 ? { maxBytes: Number(captureBytes) } : {}) },
});

const relays = [];
function relay(address, upstreamPort, delayMs) {
  const srv = net.createServer({ pauseOnConnect: true }, (client) => {
    client.on("error", () => {});
    setTimeout(() => {
      const up = net.connect({ host: address, port: upstreamPort });
      up.on("error", () => client.destroy());
      client.on("close", () => up.destroy());
      up.on("close", () => client.destroy());
      up.once("connect", () => {
        client.pipe(up);
        up.pipe(client);
        client.resume();
      });
    }, delayMs);
  });
  relays.push(srv);
  return new Promise((res, rej) => {
    srv.once("error", rej);
    srv.listen(0, address, () => res(srv.address().port));
  });
}

const devices = [];
for (const d of fleet.devices) {
  const sshPort = Number(latencyMs) > 0 ? await relay(d.address, d.sshPort, Number(latencyMs)) : d.sshPort;
  devices.push({ address: d.address, type: d.type, restPort: d.restPort, sshPort, capturePath: d.capturePath });
}
process.stdout.write(JSON.stringify({ devices }) + "\n");

let closing = false;
async function shutdown() {
  if (closing) return;
  closing = true;
  for (const r of relays) r.close();
  await fleet.close();
  process.exit(0);
}
process.stdin.on("end", shutdown);
process.stdin.on("close", shutdown);
process.stdin.resume();
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);

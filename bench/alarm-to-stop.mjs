#!/usr/bin/env node
// Alarm-to-STOP latency: N emulated AudioCodes devices capturing with a real agent; one syslog
// "Connection Lost" per device (spread, or all at once with BURST=1). Measures, inside the
// orchestrator, the time from the syslog datagram's arrival to the first STOP datagram leaving for
// the agent. Loopback only; bounded (N ≤ 1000, 120 s).
import { spawn } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { startAudioCodesFleet, SyslogSender, ovocConnectionLostAlarm } from "@capsync/emulators";
import { loadConfig } from "@capsync/cpe-capture/config/loader";
import { runConfig } from "@capsync/cpe-capture/commands/run";
import { Writable } from "node:stream";

const N = Math.min(Number(process.env.DEVICES ?? 20), 1000);
const BURST = process.env.BURST === "1";
const SPREAD_MS = Number(process.env.SPREAD_MS ?? 50);
const ROOT = resolve(import.meta.dirname, "..");
const dir = mkdtempSync(join(tmpdir(), "capsync-bench-a2s-"));
const KEY = "bench-key-0123456789abcdef0123456789";
writeFileSync(join(dir, "agent.key"), KEY);
chmodSync(join(dir, "agent.key"), 0o600);
const guard = setTimeout(() => { console.error("bench timed out"); process.exit(3); }, 120_000);

const agent = spawn(process.execPath, [join(ROOT, "packages/server-capture/dist/cli.js"), "--listen", "127.0.0.1:0", "--dir", join(dir, "agent"), "--key-file", join(dir, "agent.key"), "--interface", "lo", "--log-level", "warn", "--max-sessions", "2000"], { stdio: ["ignore", "pipe", "inherit"] });
const agentPort = await new Promise((r) => agent.stdout.on("data", (d) => { const m = /ready \S+ (\d+)/.exec(String(d)); if (m) r(Number(m[1])); }));
const fleet = await startAudioCodesFleet(N, { firstAddress: "127.0.1.1", username: "Admin", password: "bench-pw", capture: { kind: "synthetic", packetsPerSecond: 5 } });
const syslogPort = 30000 + Math.floor(Math.random() * 20000);
const devices = fleet.devices.map((d) => `  - { address: ${d.address}, type: ${d.type}, interfaces: [${d.type === "msbr" ? "eth-wan" : "eth-lan"}], username: Admin, password: { env: BENCH_PW }, tls: insecure, restPort: ${d.restPort}, sshPort: ${d.sshPort}, agents: [127.0.0.1:${agentPort}] }`).join("\n");
writeFileSync(join(dir, "run.yaml"), `output: ./runs\nconcurrency: 64\nagents: { keyFile: ./agent.key }\nsyslog: { listen: 127.0.0.1:${syslogPort} }\nstop: { duration: 110s }\nverify: false\ndevices:\n${devices}\n`);
process.env.BENCH_PW = "bench-pw";
const { config } = await loadConfig(join(dir, "run.yaml"));
const sink = new Writable({ write(_c, _e, cb) { cb(); } });
let orch;
const capturing = new Promise((res) => {
  const done = runConfig(config, { stdout: sink, stderr: sink }, { json: false, quiet: true, onStarted: (o) => { orch = o; res(); } });
  done.then((s) => (globalThis.summary = s));
});
await capturing;
while (orch.manifest.devices.some((d) => d.state !== "capturing")) await new Promise((r) => setTimeout(r, 100));
const sender = await SyslogSender.open({ host: "127.0.0.1", port: syslogPort });
for (const d of fleet.devices) {
  await sender.send(ovocConnectionLostAlarm({ deviceIp: d.address }));
  if (!BURST) await new Promise((r) => setTimeout(r, SPREAD_MS));
}
while (!globalThis.summary) await new Promise((r) => setTimeout(r, 50));
await sender.close();
const lat = orch.stopLatencies.map((x) => x.ms).sort((a, b) => a - b);
const q = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))];
await fleet.close();
agent.kill("SIGTERM");
await new Promise((r) => agent.once("exit", r));
rmSync(dir, { recursive: true, force: true });
clearTimeout(guard);
console.log(`devices: ${N}, alarms: ${lat.length} (${BURST ? "burst" : `spread ${SPREAD_MS} ms`}), run exit ${globalThis.summary.exitCode}`);
console.log(`alarm → STOP datagram: median ${q(0.5).toFixed(2)} ms, p99 ${q(0.99).toFixed(2)} ms, max ${lat.at(-1).toFixed(2)} ms`);

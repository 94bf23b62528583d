#!/usr/bin/env node
// Agent start latency: CAPTURE → 200 OK through the real agent, next to bare tcpdump's own
// spawn → "listening on" time, measured alternately in one run on this machine. Loopback only.
// Prints the ratio (median agent / median tcpdump) last.
import { spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { formatRequest, newRequestId, parseAnswer } from "@capsync/protocol";

const ROUNDS = Number(process.env.ROUNDS ?? 20);
const ROOT = resolve(import.meta.dirname, "..");
const dir = mkdtempSync(join(tmpdir(), "capsync-bench-"));
const KEY = "bench-key-0123456789abcdef0123456789";
writeFileSync(join(dir, "k"), KEY);
chmodSync(join(dir, "k"), 0o600);
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const ms = (t) => Number(t) / 1e6;

const agent = spawn(process.execPath, [join(ROOT, "packages/server-capture/dist/cli.js"), "--listen", "127.0.0.1:0", "--dir", join(dir, "c"), "--key-file", join(dir, "k"), "--interface", "lo", "--log-level", "warn"], { stdio: ["ignore", "pipe", "inherit"] });
const port = await new Promise((r) => agent.stdout.on("data", (d) => { const m = /ready \S+ (\d+)/.exec(String(d)); if (m) r(Number(m[1])); }));
const sock = createSocket("udp4");
await new Promise((r) => sock.bind(0, "127.0.0.1", r));
const key = Buffer.from(KEY);
const pending = new Map();
sock.on("message", (m) => { const a = parseAnswer(m, [key]); if (a.ok && a.value.code !== 100) pending.get(a.value.id)?.(a.value); });
function request(verb, device, filename) {
  const id = newRequestId();
  return new Promise((res) => { pending.set(id, res); sock.send(formatRequest({ id, ts: Date.now(), verb, device, filename }, key), port, "127.0.0.1"); });
}
function bareTcpdump(i) {
  return new Promise((res, rej) => {
    const t0 = process.hrtime.bigint();
    const p = spawn("tcpdump", ["-i", "lo", "-U", "--immediate-mode", "-n", "-w", join(dir, `bare${i}.pcap`), "host", "127.0.0.201"], { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    p.stderr.on("data", (d) => { err += d; if (err.includes("listening on")) { const t = ms(process.hrtime.bigint() - t0); p.kill("SIGINT"); p.once("exit", () => res(t)); } });
    p.once("exit", (c) => { if (!err.includes("listening on")) rej(new Error(`tcpdump exited ${c}: ${err}`)); });
  });
}
const agentTimes = [];
const bareTimes = [];
for (let i = 0; i < ROUNDS; i++) {
  const t0 = process.hrtime.bigint();
  const a = await request("CAPTURE", "127.0.0.200");
  if (a.code !== 200) throw new Error(`CAPTURE answered ${a.code}`);
  agentTimes.push(ms(process.hrtime.bigint() - t0));
  await request("STOP", "127.0.0.200", `CPE_device_127.0.0.200_bench${i}.pcap`);
  bareTimes.push(await bareTcpdump(i));
}
agent.kill("SIGTERM");
await new Promise((r) => agent.once("exit", r));
sock.close();
rmSync(dir, { recursive: true, force: true });
const ma = median(agentTimes), mb = median(bareTimes);
console.log(`rounds: ${ROUNDS}`);
console.log(`CAPTURE→200 OK via agent: median ${ma.toFixed(1)} ms (min ${Math.min(...agentTimes).toFixed(1)}, max ${Math.max(...agentTimes).toFixed(1)})`);
console.log(`bare tcpdump spawn→listening: median ${mb.toFixed(1)} ms (min ${Math.min(...bareTimes).toFixed(1)}, max ${Math.max(...bareTimes).toFixed(1)})`);
console.log(`ratio agent/tcpdump (target ≤ 1.2): ${(ma / mb).toFixed(2)}`);

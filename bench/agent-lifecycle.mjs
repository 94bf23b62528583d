#!/usr/bin/env node
// The agent's CPU per device lifecycle (issue 18 item 4's fan-out, agent side only): N devices do what
// the orchestrator does with one real server-capture agent — REGISTER, CAPTURE (all N capturing at
// once, CONCURRENCY in flight), then STOP and the SFTP collect of the files its answer names (stat +
// read on one shared SFTP connection) — and the agent's CPU seconds (utime + stime from /proc) are
// divided by N. FAKE=1 (default) runs bench/lib/fake-bin/tcpdump as the fan-out does (spawns and
// bookkeeping, no packet sockets); FAKE=0 the real tcpdump on lo (keep N small: one tcpdump each).
// BENCH_PROF=<dir> writes the agent's CPU profile there (common.mjs). Loopback only; bounded by BUDGET_S.
// Usage: npm run build && node bench/agent-lifecycle.mjs   (N=1000 CONCURRENCY=64 FAKE=1 MODE=per-device
//   AGENT_ARGS="--max-duration none": extra agent options, space-separated)
import { createSocket } from "node:dgram";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import SftpClient from "ssh2-sftp-client";
import { formatRequest, newRequestId, parseAnswer } from "@capsync/protocol";
import { BENCH_KEY, f1, f2, guard, loadAvg, procCpuSeconds, procRssMb, result, sshKeys, startAgent, tempDir, writeKey } from "./lib/common.mjs";

const N = Number(process.env.N ?? 1000);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 64);
const FAKE = process.env.FAKE !== "0";
const MODE = process.env.MODE ?? "per-device";
const BUDGET_S = Number(process.env.BUDGET_S ?? 600);
if (!Number.isInteger(N) || N < 1 || N > 20_000) throw new Error("agent-lifecycle: N is an integer 1..20000");
if (!Number.isInteger(CONCURRENCY) || CONCURRENCY < 1 || CONCURRENCY > 1000) throw new Error("agent-lifecycle: CONCURRENCY is an integer 1..1000");
if (!["per-device", "shared"].includes(MODE)) throw new Error("agent-lifecycle: MODE is per-device or shared");
guard(BUDGET_S, "agent-lifecycle");

const device = (i) => `127.40.${Math.floor(i / 250)}.${(i % 250) + 1}`;
const dir = tempDir("agent-lifecycle");
const keyFile = writeKey(dir);
const ssh = sshKeys(dir);
const agent = await startAgent({ dir: join(dir, "agent"), keyFile, maxSessions: N + 10, fakeTcpdump: FAKE, authorizedKeysFile: ssh.authorizedKeysFile, extra: ["--capture-mode", MODE, ...(process.env.AGENT_ARGS ?? "").split(" ").filter(Boolean)] });
const key = Buffer.from(BENCH_KEY);
const sock = createSocket({ type: "udp4", recvBufferSize: 8 << 20 });
await new Promise((r) => sock.bind(0, "127.0.0.1", r));
const pending = new Map();
sock.on("message", (m) => {
  const a = parseAnswer(m, [key]);
  if (a.ok && a.value.code !== 100) pending.get(a.value.id)?.(a.value);
});
/** One request, resent every 2 s until its final answer (UDP), at most 60 s. */
function request(verb, dev, filename) {
  const id = newRequestId();
  const datagram = formatRequest({ id, ts: Date.now(), verb, device: dev, ...(filename ? { filename } : {}) }, key);
  return new Promise((res, rej) => {
    const resend = setInterval(() => sock.send(datagram, agent.port, "127.0.0.1"), 2000);
    const give = setTimeout(() => {
      clearInterval(resend);
      pending.delete(id);
      rej(new Error(`${verb} ${dev}: no final answer in 60 s`));
    }, 60_000);
    pending.set(id, (a) => {
      clearInterval(resend);
      clearTimeout(give);
      pending.delete(id);
      res(a);
    });
    sock.send(datagram, agent.port, "127.0.0.1");
  });
}
async function lanes(fn) {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, N) }, async () => {
    while (next < N) await fn(next++);
  }));
}
const sftp = new SftpClient();
await sftp.connect({ host: "127.0.0.1", port: agent.sftpPort, username: "capsync", privateKey: readFileSync(ssh.privateKeyFile), readyTimeout: 20_000, retries: 0 });

const bad = [];
const cpu0 = procCpuSeconds(agent.pid);
const t0 = performance.now();
await lanes(async (i) => {
  const r = await request("REGISTER", device(i));
  if (r.code !== 200) bad.push(`REGISTER ${device(i)} ${r.code}`);
  const c = await request("CAPTURE", device(i));
  if (c.code !== 200) bad.push(`CAPTURE ${device(i)} ${c.code} ${JSON.stringify(c.details)}`);
});
const cpu1 = procCpuSeconds(agent.pid);
const t1 = performance.now();
let bytes = 0;
await lanes(async (i) => {
  const s = await request("STOP", device(i), `CPE_device_${device(i)}_2026-12-06T06.00.00.${String(i).padStart(6, "0")}.pcap`);
  if (s.code !== 200) return void bad.push(`STOP ${device(i)} ${s.code} ${JSON.stringify(s.details)}`);
  for (const name of (s.details.files ?? "").split(",").filter(Boolean)) {
    await sftp.stat(`/${name}`);
    const got = await sftp.get(`/${name}`);
    bytes += got.length;
  }
});
const cpu2 = procCpuSeconds(agent.pid);
const t2 = performance.now();
await sftp.end();
sock.close();
const rss = procRssMb(agent.pid);
await agent.close();
const r = {
  bench: "agent-lifecycle",
  devices: N,
  concurrency: CONCURRENCY,
  fake: FAKE,
  mode: MODE,
  startS: (t1 - t0) / 1000,
  stopS: (t2 - t1) / 1000,
  agentCpuStartS: cpu1 - cpu0,
  agentCpuStopS: cpu2 - cpu1,
  agentCpuMsPerDevice: ((cpu2 - cpu0) * 1000) / N,
  agentRssPeakMb: rss.peak,
  collectedBytes: bytes,
  expectedBytes: FAKE ? N * 24 : undefined,
  failures: bad.length,
  load: loadAvg(),
};
console.log(
  `agent-lifecycle ${N} devices (${MODE}, ${FAKE ? "fake" : "real"} tcpdump, ${CONCURRENCY} at once): REGISTER+CAPTURE ${f1(r.startS)} s (agent CPU ${f2(r.agentCpuStartS)} s), STOP+collect ${f1(r.stopS)} s (agent CPU ${f2(r.agentCpuStopS)} s); agent CPU per device ${f2(r.agentCpuMsPerDevice)} ms; peak RSS ${f1(r.agentRssPeakMb)} MB; ${bad.length} failures; load ${r.load}`,
);
for (const b of bad.slice(0, 5)) console.log(`  ! ${b}`);
result(r);
process.exitCode = bad.length ? 1 : 0;

#!/usr/bin/env node
// Agent start latency: CAPTURE → 200 OK through the real agent (real tcpdump, the agent's default
// options), next to bare tcpdump's own spawn → "listening on" time with the same arguments the agent
// uses, alternately ROUNDS times in one run on this machine (medians and their ratio).
// Then SESSIONS concurrent captures on one agent: SESSIONS CAPTUREs at once, all must be 200 OK;
// time to the last OK, the agent's CPU and peak RSS, the tcpdumps' total RSS; then all stopped.
// Loopback only (filters on 127.0.3.x addresses nothing sends to); bounded by BUDGET_S.
// Prints the ratio last. Usage: npm run build && node bench/agent-start.mjs   (ROUNDS=30 SESSIONS=200)
import { spawn, spawnSync } from "node:child_process";
import { createSocket } from "node:dgram";
import { join } from "node:path";
import { formatRequest, newRequestId, parseAnswer } from "@capsync/protocol";
import { BENCH_KEY, f1, f2, guard, loadAvg, median, nowMs, procCpuSeconds, procRssMb, result, startAgent, stats, tempDir, writeKey } from "./lib/common.mjs";

const ROUNDS = Number(process.env.ROUNDS ?? 30);
const SESSIONS = Number(process.env.SESSIONS ?? 200);
const BUDGET_S = Number(process.env.BUDGET_S ?? 120);
guard(BUDGET_S, "agent-start");
const dir = tempDir("agent-start");
const keyFile = writeKey(dir);
const agent = await startAgent({ dir: join(dir, "agent"), keyFile, maxSessions: SESSIONS + 10 });

const sock = createSocket({ type: "udp4", recvBufferSize: 4 << 20 });
await new Promise((r) => sock.bind(0, "127.0.0.1", r));
const key = Buffer.from(BENCH_KEY);
const pending = new Map();
sock.on("message", (m) => {
  const a = parseAnswer(m, [key]);
  if (a.ok && a.value.code !== 100) pending.get(a.value.id)?.(a.value);
});
/** One request, resent every 500 ms until a final answer (UDP), at most 20 s. */
function request(verb, device, filename) {
  const id = newRequestId();
  const t0 = nowMs();
  const datagram = formatRequest({ id, ts: Date.now(), verb, device, filename }, key);
  return new Promise((res, rej) => {
    const resend = setInterval(() => sock.send(datagram, agent.port, "127.0.0.1"), 500);
    const give = setTimeout(() => {
      clearInterval(resend);
      rej(new Error(`${verb} ${device}: no answer in 20 s`));
    }, 20_000);
    pending.set(id, (a) => {
      clearInterval(resend);
      clearTimeout(give);
      pending.delete(id);
      res({ ...a, ms: nowMs() - t0 });
    });
    sock.send(datagram, agent.port, "127.0.0.1");
  });
}

/** The agent's own tcpdump arguments for `host <device>` (see server-capture tcpdumpArgs), minus -w. */
function bareTcpdump(i) {
  return new Promise((res, rej) => {
    const t0 = nowMs();
    const p = spawn("tcpdump", ["-i", "lo", "-U", "--immediate-mode", "-n", "-w", join(dir, `bare${i}.pcap`), "-Z", "tcpdump", "host", "127.0.3.250"], { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    p.stderr.on("data", (d) => {
      err += d;
      if (err.includes("listening on")) {
        const t = nowMs() - t0;
        p.kill("SIGINT");
        p.once("exit", () => res(t));
      }
    });
    p.once("exit", (c) => {
      if (!err.includes("listening on")) rej(new Error(`tcpdump exited ${c}: ${err}`));
    });
  });
}

// --- 1. one capture at a time, alternately with bare tcpdump -------------------------------------------
const agentTimes = [];
const bareTimes = [];
for (let i = 0; i < ROUNDS; i++) {
  const a = await request("CAPTURE", "127.0.3.200");
  if (a.code !== 200) throw new Error(`CAPTURE answered ${a.code} ${JSON.stringify(a.details)}`);
  agentTimes.push(a.ms);
  const s = await request("STOP", "127.0.3.200", `CPE_device_127.0.3.200_2026-11-23T10.00.00.${String(i).padStart(6, "0")}.pcap`);
  if (s.code !== 200) throw new Error(`STOP answered ${s.code}`);
  bareTimes.push(await bareTcpdump(i));
}
const ma = median(agentTimes);
const mb = median(bareTimes);
console.log(`rounds: ${ROUNDS}, alternately; load ${loadAvg()}`);
console.log(`CAPTURE → 200 OK via the agent:  median ${f1(ma)} ms (min ${f1(Math.min(...agentTimes))}, max ${f1(Math.max(...agentTimes))})`);
console.log(`bare tcpdump spawn → listening:  median ${f1(mb)} ms (min ${f1(Math.min(...bareTimes))}, max ${f1(Math.max(...bareTimes))})`);

// --- 2. SESSIONS concurrent sessions on one agent --------------------------------------------------------
const devices = Array.from({ length: SESSIONS }, (_, i) => `127.0.3.${i + 1}`);
const cpu0 = procCpuSeconds(agent.pid);
const t0 = nowMs();
const caps = await Promise.all(devices.map((d) => request("CAPTURE", d)));
const allUpMs = nowMs() - t0;
const cpuStart = procCpuSeconds(agent.pid) - cpu0;
const okCaps = caps.filter((a) => a.code === 200).length;
// The tcpdumps the agent runs for these devices, and their memory.
const pids = spawnSync("pgrep", ["-P", String(agent.pid), "-x", "tcpdump"], { encoding: "utf8" }).stdout.split("\n").filter(Boolean);
const tcpdumpRss = pids.reduce((n, p) => n + (procRssMb(Number(p)).rss || 0), 0);
const agentRss = procRssMb(agent.pid);
const c1 = procCpuSeconds(agent.pid);
const t1 = nowMs();
const stops = await Promise.all(devices.map((d, i) => request("STOP", d, `CPE_device_${d}_2026-11-23T11.00.00.${String(i).padStart(6, "0")}.pcap`)));
const allDownMs = nowMs() - t1;
const cpuStop = procCpuSeconds(agent.pid) - c1;
const okStops = stops.filter((a) => a.code === 200).length;
console.log(
  `${SESSIONS} concurrent CAPTUREs: ${okCaps}/${SESSIONS} OK, last OK after ${f1(allUpMs)} ms (per CAPTURE ${JSON.stringify(stats(caps.map((a) => +a.ms.toFixed(1))))}); agent CPU ${f2(cpuStart)} s, agent RSS ${f1(agentRss.rss)} MB (peak ${f1(agentRss.peak)}), ${pids.length} tcpdumps ${f1(tcpdumpRss)} MB RSS in all`,
);
console.log(`${SESSIONS} STOPs at once: ${okStops}/${SESSIONS} OK in ${f1(allDownMs)} ms, agent CPU ${f2(cpuStop)} s`);
await agent.close();
sock.close();
result({
  bench: "agent-start",
  rounds: ROUNDS,
  agentMedianMs: ma,
  bareMedianMs: mb,
  ratio: ma / mb,
  sessions: SESSIONS,
  sessionsOk: okCaps,
  stopsOk: okStops,
  allUpMs,
  allDownMs,
  agentCpuStartS: cpuStart,
  agentCpuStopS: cpuStop,
  agentRssMb: agentRss.rss,
  agentPeakRssMb: agentRss.peak,
  tcpdumps: pids.length,
  tcpdumpRssMb: tcpdumpRss,
});
console.log(`agent start: CAPTURE→200 median ${f1(ma)} ms vs bare tcpdump ${f1(mb)} ms → ratio ${f2(ma / mb)} (target ≤ 1.2); ${okCaps}/${SESSIONS} concurrent sessions OK`);
process.exit(0);

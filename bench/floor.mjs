#!/usr/bin/env node
// Floor: the protocol work of one fan-out device lifecycle done by bare Node (bench/lib/floor-pieces.mjs)
// against the same emulated fleet and agent, at the same concurrency, so the fan-out's orchestrator
// CPU per device can be stated as a ratio to it. Each piece runs over every device as its own pass
// (its CPU is then its own): UDP (REGISTER/CAPTURE/STOP), REST (one TLS handshake + status, start,
// stop on one keep-alive connection), device SFTP (one ssh2 connection + read of the capture file),
// agent SFTP (read of the agent's file on one shared connection). CPU is process.cpuUsage() of this
// process: the fleet and the agent are child processes.
// runFloorInChild() is what bench/fanout.mjs calls in its own run (runFloor in a child process of
// this file, so the floor's garbage and CPU never land in the orchestrator's process); run directly,
// this starts its own fleet and agent: node bench/floor.mjs   (DEVICES=1000 LATENCY_MS=50
// CONCURRENCY=64 FLEET_PROCS=auto AGENT_MODE=per-device|shared AGENTS=1)
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { BENCH_KEY, exited, f1, f2, guard, loadAvg, nowMs, result, sshKeys, startAgents, startFleets, tempDir, track, writeKey } from "./lib/common.mjs";
import { agentSftp, deviceSftp, pool, restLifecycle, udpClient, udpLifecycle } from "./lib/floor-pieces.mjs";

const cpuMsSince = (c0) => {
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1000;
};

/**
 * @param o.devices fleet devices ({address, type, restPort, sshPort})
 * @param o.agents [{host, port, sftpPort}]: device i uses agents[i % agents.length] (as the fan-out's config)
 * @param o.sshPrivateKeyFile the agent SFTP key; o.dir a scratch folder; o.concurrency as the fan-out's
 * @returns per-piece CPU ms (total and per device), wall ms, TLS connections
 */
export async function runFloor({ devices, agents, sshPrivateKeyFile, dir, concurrency, username = "Admin", password = "bench-pw", log = console.log }) {
  const out = join(dir, "floor-files");
  mkdirSync(out, { recursive: true });
  const n = devices.length;
  const cpu = {};
  const wall = {};
  const pass = async (name, fn) => {
    const t0 = nowMs();
    const c0 = process.cpuUsage();
    const r = await fn();
    cpu[name] = cpuMsSince(c0);
    wall[name] = nowMs() - t0;
    log(`  floor ${name}: ${f1(cpu[name])} CPU ms for ${n} devices = ${f2(cpu[name] / n)} ms/device, ${f1(wall[name] / 1000)} s wall`);
    return r;
  };
  const key = Buffer.from(BENCH_KEY);
  const udp = await udpClient({ key });
  const agentOf = (i) => agents[i % agents.length];
  const stamp = new Date().toISOString().replace(/[:]/g, ".");
  let files;
  try {
    files = await pass("udp", () => pool(devices, concurrency, (d, i) => udpLifecycle(d, udp, agentOf(i), `floor_${d.address}_${stamp}.pcap`)));
  } finally {
    udp.close();
  }
  if (udp.stale()) log(`  floor udp: ${udp.stale()} request(s) answered "stale" (the agent read them over 30 s late) and made again`);
  const conns = await pass("rest", () => pool(devices, concurrency, (d) => restLifecycle(d, { username, password })));
  const devBytes = await pass("deviceSftp", () => pool(devices, concurrency, (d) => deviceSftp(d, { username, password, dir: out })));
  const privateKey = readFileSync(sshPrivateKeyFile);
  const sftps = agents.map((a) => agentSftp({ host: a.host, port: a.sftpPort, privateKey }));
  try {
    await pass("agentSftp", () => pool(devices, concurrency, (d, i) => sftps[i % agents.length].get(files[i], join(out, files[i]))));
  } finally {
    for (const s of sftps) s.close();
  }
  const total = Object.values(cpu).reduce((a, b) => a + b, 0);
  const perDevice = Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, v / n]));
  const tlsConnections = conns.reduce((a, b) => a + b, 0);
  return {
    devices: n,
    concurrency,
    cpuMs: { ...cpu, total },
    perDeviceMs: { ...perDevice, total: total / n },
    wallMs: wall,
    tlsConnections,
    udpStaleRetries: udp.stale(),
    deviceFileBytes: devBytes.reduce((a, b) => a + b, 0) / n,
  };
}

/**
 * runFloor (same options but `log`) in a child process of this file: its log lines are passed to
 * `log`, its result is returned. The caller's process CPU and heap stay its own.
 */
export async function runFloorInChild({ log = console.log, ...o }) {
  const input = join(o.dir, "floor-input.json");
  const devices = o.devices.map(({ address, type, restPort, sshPort, capturePath }) => ({ address, type, restPort, sshPort, capturePath }));
  const agents = o.agents.map(({ host, port, sftpPort }) => ({ host, port, sftpPort }));
  writeFileSync(input, JSON.stringify({ ...o, devices, agents }));
  const child = track(spawn(process.execPath, [import.meta.filename, "--child", input], { stdio: ["ignore", "pipe", "inherit"] }));
  let buf = "";
  let res;
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (d) => {
    buf += d;
    for (let i; (i = buf.indexOf("\n")) >= 0; buf = buf.slice(i + 1)) {
      const line = buf.slice(0, i);
      if (line.startsWith("FLOOR ")) res = JSON.parse(line.slice(6));
      else log(line);
    }
  });
  await exited(child);
  if (!res) throw new Error(`floor child exited ${child.exitCode ?? child.signalCode} without a result`);
  return res;
}

export function floorLine(f) {
  const p = f.perDeviceMs;
  return `floor: ${f2(p.total)} CPU ms/device (TLS+REST ${f2(p.rest)}, device SSH+SFTP ${f2(p.deviceSftp)}, UDP ${f2(p.udp)}, agent SFTP ${f2(p.agentSftp)}) over ${f.devices} devices at concurrency ${f.concurrency}; ${f.tlsConnections} TLS connections`;
}

// --- child of runFloorInChild ------------------------------------------------------------------
if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href && process.argv[2] === "--child") {
  const o = JSON.parse(readFileSync(process.argv[3], "utf8"));
  const f = await runFloor(o);
  process.stdout.write(`FLOOR ${JSON.stringify(f)}\n`, () => process.exit(0));
}

// --- standalone ---------------------------------------------------------------------------------
else if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const N = Number(process.env.DEVICES ?? 1000);
  const LATENCY_MS = Number(process.env.LATENCY_MS ?? 50);
  const CONCURRENCY = Number(process.env.CONCURRENCY ?? 64);
  const BUDGET_S = Number(process.env.BUDGET_S ?? 600);
  const AGENT_MODE = process.env.AGENT_MODE ?? "per-device";
  guard(BUDGET_S, "floor");
  const dir = tempDir("floor");
  const keyFile = writeKey(dir);
  const ssh = sshKeys(dir);
  const fleet = await startFleets(N, { latencyMs: LATENCY_MS, maxSeconds: BUDGET_S + 30, processes: process.env.FLEET_PROCS });
  const agents = await startAgents(Number(process.env.AGENTS ?? 1), { dir, keyFile, maxSessions: N + 10, fakeTcpdump: AGENT_MODE === "per-device", authorizedKeysFile: ssh.authorizedKeysFile, extra: ["--capture-mode", AGENT_MODE] });
  console.log(`fleet of ${N} devices in ${fleet.procs.length} process(es) and ${agents.length} agent(s) up; load ${loadAvg()}`);
  const f = await runFloor({ devices: fleet.devices, agents, sshPrivateKeyFile: ssh.privateKeyFile, dir, concurrency: CONCURRENCY });
  result({ bench: "floor", ...f, load: loadAvg() });
  console.log(floorLine(f) + `; load ${loadAvg()}`);
  await Promise.all([fleet.close(), ...agents.map((a) => a.close())]);
  process.exit(0);
}

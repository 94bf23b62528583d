#!/usr/bin/env node
// Fan-out: start captures on N emulated AudioCodes devices (REST + SFTP, LATENCY_MS added per
// request) and their agent, then stop and collect everything (device files over SFTP, agent
// files over the agent's read-only SFTP). The orchestrator runs in this process (runConfig, as
// `cpe-capture run` does); the fleet and the agent are separate processes, so this process's RSS
// is the orchestrator's.
// Baseline in the same run: the same work one device at a time (concurrency 1, each device
// stopped and collected before the next), on SERIAL_N devices, extrapolated linearly to N.
// The agent is the real server-capture with a tcpdump stand-in (bench/lib/fake-bin/tcpdump):
// 1000 real tcpdumps on this 2-core machine would measure process spawning, not the fan-out.
// Loopback only (127.0.1.x devices, 127.0.0.1 agent); bounded by BUDGET_S.
// Usage: npm run build && node bench/fanout.mjs   (DEVICES=1000 SERIAL_N=20 LATENCY_MS=50 CONCURRENCY=64)
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { loadConfig } from "@capsync/cpe-capture/config/loader";
import { runConfig } from "@capsync/cpe-capture/commands/run";
import { deviceYaml, f1, f2, guard, loadAvg, nowMs, procCpuSeconds, procRssMb, quantile, result, rssSampler, sleep, sshKeys, startAgent, startFleet, tempDir, writeKey } from "./lib/common.mjs";

const N = Math.min(Number(process.env.DEVICES ?? 1000), 2000);
const SERIAL_N = Math.min(Number(process.env.SERIAL_N ?? 20), N);
const LATENCY_MS = Number(process.env.LATENCY_MS ?? 50);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 64);
const BUDGET_S = Number(process.env.BUDGET_S ?? 240);
/** Device REST requests per device (GET status, start script with its show, stop script with its show) + one SFTP session. */
const REQUESTS_PER_DEVICE = 4;
guard(BUDGET_S, "fanout");

const dir = tempDir("fanout");
const keyFile = writeKey(dir);
const ssh = sshKeys(dir);
process.env.BENCH_PW = "bench-pw";
const sink = new Writable({ write(_c, _e, cb) { cb(); } });

const t0 = nowMs();
const fleet = await startFleet(N, { latencyMs: LATENCY_MS, maxSeconds: BUDGET_S + 30 });
const agent = await startAgent({ dir: join(dir, "agent"), keyFile, maxSessions: N + 10, fakeTcpdump: true, authorizedKeysFile: ssh.authorizedKeysFile });
console.log(`fleet of ${N} emulated devices and the agent up in ${f1((nowMs() - t0) / 1000)} s; load ${loadAvg()}`);

async function configFor(devices, concurrency, name) {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  const yaml = [
    `output: ${join(d, "runs")}`,
    `concurrency: ${concurrency}`,
    `agents: { keyFile: ${keyFile}, sshKeyFile: ${ssh.privateKeyFile}, sftpPort: ${agent.sftpPort} }`,
    `syslog: { listen: 127.0.0.1:0 }`,
    `stop: { duration: ${BUDGET_S}s }`,
    `verify: false`,
    `devices:`,
    ...devices.map((x) => deviceYaml(x, [`127.0.0.1:${agent.port}`])),
  ].join("\n");
  writeFileSync(join(d, "run.yaml"), yaml + "\n");
  return (await loadConfig(join(d, "run.yaml"))).config;
}

const states = (orch) => orch.manifest.devices.map((x) => x.state);
async function until(pred, everyMs = 5) {
  while (!pred()) await sleep(everyMs);
}
function startRun(config) {
  let orch;
  const started = new Promise((res) => {
    const done = runConfig(config, { stdout: sink, stderr: sink }, { json: false, quiet: true, onStarted: (o) => { orch = o; res(o); } });
    done.then((s) => (started.summary = s), (e) => (started.error = e));
  });
  return { started, get orch() { return orch; } };
}
function checkCollected(orch, label) {
  const bad = orch.manifest.devices.filter((d) => d.status !== "collected");
  if (!bad.length) return;
  const why = `${label}: ${bad.length} device(s) not collected, e.g. ${bad[0].device}: ${bad[0].description} ${bad[0].agents.map((a) => a.error ?? "").join(" ")}`;
  if (process.env.ALLOW_FAIL) console.log(`WARNING ${why}`);
  else throw new Error(why);
}

// --- serial baseline: one device at a time, start to collected ----------------------------------
async function serial() {
  const config = await configFor(fleet.devices.slice(0, SERIAL_N), 1, "serial");
  const tStart = nowMs();
  const run = startRun(config);
  const orch = await run.started;
  // concurrency 1: the starts are one at a time already; each stop is done before the next.
  for (const d of orch.manifest.devices) {
    await until(() => d.state === "capturing" || d.state === "failed" || d.state === "done");
    orch.requestStop(d.device, "manual", "bench: serial baseline");
    await until(() => d.state === "done" || d.state === "failed");
  }
  const wall = nowMs() - tStart;
  await until(() => run.started.summary || run.started.error, 20);
  if (run.started.error) throw run.started.error;
  checkCollected(orch, "serial");
  return wall;
}

// --- fan-out: all devices -------------------------------------------------------------------------
async function fanout() {
  const config = await configFor(fleet.devices, CONCURRENCY, "fanout");
  const rss = rssSampler(100);
  const cpu0 = process.cpuUsage();
  const agentCpu0 = procCpuSeconds(agent.pid);
  const fleetCpu0 = procCpuSeconds(fleet.proc.pid);
  const tStart = nowMs();
  const run = startRun(config);
  const orch = await run.started;
  await until(() => states(orch).every((s) => s === "capturing" || s === "failed" || s === "done"));
  const tCapturing = nowMs();
  if (process.env.HEAP_SNAPSHOT) (await import("node:v8")).writeHeapSnapshot(process.env.HEAP_SNAPSHOT);
  if (process.env.DEBUG) {
    const m = process.memoryUsage();
    console.log(`  memory when all capture: rss ${f1(m.rss / 1048576)} MB, heap used ${f1(m.heapUsed / 1048576)} of ${f1(m.heapTotal / 1048576)}, external ${f1(m.external / 1048576)}, array buffers ${f1(m.arrayBuffers / 1048576)}`);
  }
  rss.phase("stop");
  const lag = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();
  orch.stopAll("manual", "bench: stop all");
  await until(() => states(orch).every((s) => s === "done" || s === "failed"));
  const tCollected = nowMs();
  rss.phase("report");
  lag.disable();
  if (process.env.DEBUG) console.log(`  event-loop delay while stopping: p50 ${f1(lag.percentile(50) / 1e6)} ms, p99 ${f1(lag.percentile(99) / 1e6)} ms, max ${f1(lag.max / 1e6)} ms`);
  await until(() => run.started.summary || run.started.error, 20);
  const tReturned = nowMs();
  if (run.started.error) throw run.started.error;
  const cpu = process.cpuUsage(cpu0);
  checkCollected(orch, "fan-out");
  if (process.env.DEBUG) breakdown(orch.manifest);
  return {
    startMs: tCapturing - tStart,
    stopCollectMs: tCollected - tCapturing,
    wallMs: tCollected - tStart,
    runReturnedMs: tReturned - tStart,
    rss: rss.stop(),
    orchCpuS: (cpu.user + cpu.system) / 1e6,
    agentCpuS: procCpuSeconds(agent.pid) - agentCpu0,
    fleetCpuS: procCpuSeconds(fleet.proc.pid) - fleetCpu0,
    agentRssMb: procRssMb(agent.pid).peak,
  };
}

/** Where a device's time went (DEBUG=1): medians of agent answers and device tasks. */
function breakdown(m) {
  const by = new Map();
  const add = (k, v) => by.set(k, [...(by.get(k) ?? []), v]);
  for (const d of m.devices) {
    for (const a of d.agents) for (const x of a.answers) add(`agent ${x.verb}`, x.elapsedMs);
    for (const t of d.tasks) add(`device ${t.name}`, t.durationMs);
    add("started→capturing", Date.parse(d.times.capturing) - Date.parse(d.times.started));
  }
  for (const [k, v] of by) console.log(`  ${k}: n=${v.length} p50 ${f1(quantile(v, 0.5))} ms p99 ${f1(quantile(v, 0.99))} ms max ${f1(Math.max(...v))} ms`);
}

const serialMs = process.env.SKIP_SERIAL ? NaN : await serial();
const serialPerDevice = serialMs / SERIAL_N;
const serialExtrapolated = serialPerDevice * N;
console.log(`serial baseline: ${SERIAL_N} devices one at a time in ${f1(serialMs / 1000)} s (${f1(serialPerDevice)} ms per device) → ${N} devices ≈ ${f1(serialExtrapolated / 1000)} s (extrapolated)`);
const r = await fanout();
const boundMs = (REQUESTS_PER_DEVICE * LATENCY_MS * N) / CONCURRENCY;
console.log(`fan-out ${N} devices, concurrency ${CONCURRENCY}: all capturing after ${f2(r.startMs / 1000)} s, stopped and collected ${f2(r.stopCollectMs / 1000)} s later; run returned (report written) at ${f2(r.runReturnedMs / 1000)} s`);
console.log(`CPU seconds during the fan-out: orchestrator ${f1(r.orchCpuS)}, agent ${f1(r.agentCpuS)}, fleet ${f1(r.fleetCpuS)}; agent peak RSS ${f1(r.agentRssMb)} MB; load ${loadAvg()}`);
console.log(`orchestrator peak RSS by phase: start ${f1(r.rss.start)} MB, stop+collect ${f1(r.rss.stop)} MB, report ${f1(r.rss.report)} MB`);
console.log(`concurrency bound: ${REQUESTS_PER_DEVICE} requests × ${LATENCY_MS} ms × ${N} / ${CONCURRENCY} = ${f2(boundMs / 1000)} s`);
const vsSerial = serialExtrapolated / r.wallMs;
const vsBound = r.wallMs / boundMs;
result({
  bench: "fanout",
  devices: N,
  wallS: r.wallMs / 1000,
  startS: r.startMs / 1000,
  stopCollectS: r.stopCollectMs / 1000,
  serialS: serialExtrapolated / 1000,
  serialMeasuredS: serialMs / 1000,
  serialN: SERIAL_N,
  boundS: boundMs / 1000,
  vsSerial,
  vsBound,
  rssMb: r.rss.max,
  rssPhasesMb: r.rss,
  orchCpuS: r.orchCpuS,
  agentCpuS: r.agentCpuS,
  fleetCpuS: r.fleetCpuS,
});
await Promise.all([fleet.close(), agent.close()]);
console.log(
  `fan-out ${N} devices: ${f2(r.wallMs / 1000)} s (serial ≈ ${f1(serialExtrapolated / 1000)} s) → ${f1(vsSerial)}× faster than serial (target ≥ 50), ${f2(vsBound)}× the concurrency bound ${f2(boundMs / 1000)} s (target ≤ 2), orchestrator peak RSS ${f1(r.rss.max)} MB (target < 300)`,
);
process.exit(0);

#!/usr/bin/env node
// Fan-out: start captures on N emulated AudioCodes devices (REST + SFTP, LATENCY_MS added per
// request) and their agent, then stop and collect everything (device files over SFTP, agent
// files over the agent's read-only SFTP). The orchestrator runs in this process (runConfig, as
// `cpe-capture run` does); the fleet and the agent are separate processes, so this process's RSS
// and CPU are the orchestrator's.
// In the same run, before the fan-out: the floor (bench/floor.mjs: the same protocol work by bare
// Node, same fleet, same agent, same concurrency, in a child process so its garbage and CPU are not
// the orchestrator's) on FLOOR_N devices, and the serial baseline (the
// same work one device at a time, each device stopped and collected before the next, on SERIAL_N
// devices, extrapolated linearly to N). The orchestrator's CPU per device is reported as a ratio
// to the floor's.
// Fleet scale: the fleet is spread over several emulator processes (one per 2500 devices unless
// FLEET_PROCS says, each on its own 127.<10+k>.0.0/16 addresses) so no process needs more than
// the 20000 file descriptors `ulimit -n` allows here (hard limit too: it cannot be raised).
// The end checks every capture was collected exactly once: one device file and one agent file per
// device in the run folder, no other capture file, each named once in manifest.json with its size.
// The agent is the real server-capture. Up to 2000 devices (AGENT_MODE=per-device) with a tcpdump
// stand-in per device (bench/lib/fake-bin/tcpdump): 1000 real tcpdumps on this 2-core machine would
// measure process spawning, not the fan-out. Above (AGENT_MODE=shared) in its shared capture mode:
// one real tcpdump on lo, each packet demultiplexed into its device's file (10,000 stand-in
// processes, two each, would exhaust pid_max 32768 with everything else running).
// Loopback only (127.0.1.x / 127.1x.y.z devices, 127.0.0.x agents); bounded by BUDGET_S.
// Usage: npm run build && node bench/fanout.mjs [--devices N]
//   (DEVICES or BENCH_DEVICES=1000, SERIAL_N=20, FLOOR_N=min(N,1000), LATENCY_MS=50, CONCURRENCY=64,
//    FLEET_PROCS=auto, AGENTS=1, AGENT_MODE=per-device up to 2000 devices else shared)
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { loadConfig } from "@capsync/cpe-capture/config/loader";
import { runConfig } from "@capsync/cpe-capture/commands/run";
import { f1, f2, guard, loadAvg, nowMs, procCpuSeconds, procRssMb, quantile, result, rssSampler, sleep, sshKeys, startAgents, startFleets, tempDir, writeKey, writeRunConfig } from "./lib/common.mjs";
import { floorLine, runFloorInChild } from "./floor.mjs";

/** --devices N beats BENCH_DEVICES beats DEVICES. */
function deviceCount() {
  const i = process.argv.indexOf("--devices");
  const raw = i >= 0 ? process.argv[i + 1] : (process.env.BENCH_DEVICES ?? process.env.DEVICES ?? "1000");
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 20000) {
    console.error(`fanout: device count must be an integer 1..20000, got '${raw}'`);
    process.exit(2);
  }
  return n;
}
const N = deviceCount();
const SERIAL_N = Math.min(Number(process.env.SERIAL_N ?? 20), N);
const FLOOR_N = Math.min(Number(process.env.FLOOR_N ?? 1000), N);
const LATENCY_MS = Number(process.env.LATENCY_MS ?? 50);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 64);
const BUDGET_S = Number(process.env.BUDGET_S ?? 600);
/** per-device: one tcpdump stand-in per device (the figures up to 1000 devices); shared: one real tcpdump on lo, demultiplexed. */
const AGENT_MODE = process.env.AGENT_MODE ?? (N > 2000 ? "shared" : "per-device");
/** Agent processes (127.0.0.1, .2, ...), device i on agent i mod AGENTS. */
const AGENTS = Number(process.env.AGENTS ?? 1);
if (!Number.isInteger(AGENTS) || AGENTS < 1 || AGENTS > 50) {
  console.error(`fanout: AGENTS must be an integer 1..50, got '${process.env.AGENTS}'`);
  process.exit(2);
}
if (!["per-device", "shared"].includes(AGENT_MODE)) {
  console.error(`fanout: AGENT_MODE must be per-device or shared, got '${AGENT_MODE}'`);
  process.exit(2);
}
/** Device REST requests per device (GET status, start script with its show, stop script with its show) + one SFTP session. */
const REQUESTS_PER_DEVICE = 4;
guard(BUDGET_S, "fanout");

const dir = tempDir("fanout");
const keyFile = writeKey(dir);
const ssh = sshKeys(dir);
process.env.BENCH_PW = "bench-pw";
const sink = new Writable({ write(_c, _e, cb) { cb(); } });

const t0 = nowMs();
const fleet = await startFleets(N, { latencyMs: LATENCY_MS, maxSeconds: BUDGET_S + 30, processes: process.env.FLEET_PROCS });
const agents = await startAgents(AGENTS, { dir, keyFile, maxSessions: N + 10, fakeTcpdump: AGENT_MODE === "per-device", authorizedKeysFile: ssh.authorizedKeysFile, extra: ["--capture-mode", AGENT_MODE] });
console.log(`fleet of ${N} emulated devices (${fleet.procs.length} process(es)) and ${AGENTS} agent(s) (${AGENT_MODE}) up in ${f1((nowMs() - t0) / 1000)} s; load ${loadAvg()}`);
const agentCpuSeconds = () => agents.reduce((a, x) => a + procCpuSeconds(x.pid), 0);
/** Device i (of the fleet) is served by agent i mod AGENTS, in the floor and in the runs. */
const agentIndex = new Map(fleet.devices.map((d, i) => [d.address, i % AGENTS]));
const fleetCpuSeconds = () => fleet.procs.reduce((a, p) => a + procCpuSeconds(p.pid), 0);

async function configFor(devices, concurrency, name) {
  const file = writeRunConfig({ dir: join(dir, name), keyFile, ssh, sftpPort: agents[0].sftpPort, concurrency, budgetS: BUDGET_S, devices, agentOf: (x) => agents[agentIndex.get(x.address)] });
  return (await loadConfig(file)).config;
}

/**
 * Resolves when every device is in one of `wanted`, polled every POLL_MS (this process's CPU is the
 * orchestrator's, so the wait must cost next to nothing): the states waited for are final for the
 * phase, so a cursor moves past each device once and a poll looks at one device unless it advanced.
 */
const POLL_MS = Number(process.env.POLL_MS ?? 50);
async function allIn(orch, ...wanted) {
  const devices = orch.manifest.devices;
  let i = 0;
  for (;;) {
    while (i < devices.length && wanted.includes(devices[i].state)) i++;
    if (i === devices.length) return;
    await sleep(POLL_MS);
  }
}
async function until(pred, everyMs = POLL_MS) {
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
    await until(() => d.state === "capturing" || d.state === "failed" || d.state === "done", 10);
    orch.requestStop(d.device, "manual", "bench: serial baseline");
    await until(() => d.state === "done" || d.state === "failed", 10);
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
  const agentCpu0 = agentCpuSeconds();
  const fleetCpu0 = fleetCpuSeconds();
  const tStart = nowMs();
  const run = startRun(config);
  const orch = await run.started;
  await allIn(orch, "capturing", "failed", "done");
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
  await allIn(orch, "done", "failed");
  const tCollected = nowMs();
  rss.phase("report");
  lag.disable();
  if (process.env.DEBUG) console.log(`  event-loop delay while stopping: p50 ${f1(lag.percentile(50) / 1e6)} ms, p99 ${f1(lag.percentile(99) / 1e6)} ms, max ${f1(lag.max / 1e6)} ms`);
  await until(() => run.started.summary || run.started.error, 20);
  const tReturned = nowMs();
  if (run.started.error) throw run.started.error;
  const cpu = process.cpuUsage(cpu0);
  checkCollected(orch, "fan-out");
  const once = checkExactlyOnce(run.started.summary.folder);
  if (process.env.DEBUG) breakdown(orch.manifest);
  return {
    once,
    startMs: tCapturing - tStart,
    stopCollectMs: tCollected - tCapturing,
    wallMs: tCollected - tStart,
    runReturnedMs: tReturned - tStart,
    rss: rss.stop(),
    orchCpuS: (cpu.user + cpu.system) / 1e6,
    agentCpuS: agentCpuSeconds() - agentCpu0,
    fleetCpuS: fleetCpuSeconds() - fleetCpu0,
    agentRssMb: Math.max(...agents.map((a) => procRssMb(a.pid).peak)),
  };
}

/**
 * Every capture collected exactly once: manifest.json (as written) names one device file and one
 * file per agent for each device, no name twice, each on disk with its size, and the run folder
 * holds no other capture file (but the report's merged.pcapng). Throws (ALLOW_FAIL: warns) otherwise.
 */
function checkExactlyOnce(folder) {
  const m = JSON.parse(readFileSync(join(folder, "manifest.json"), "utf8"));
  const named = new Map();
  const problems = [];
  const add = (device, f) => {
    if (!f) return problems.push(`${device}: a file is missing from the manifest`);
    if (named.has(f.name)) problems.push(`${f.name} named twice (${named.get(f.name).device}, ${device})`);
    named.set(f.name, { device, bytes: f.bytes });
  };
  for (const d of m.devices) {
    add(d.device, d.deviceFile);
    for (const a of d.agents) {
      if (a.files.length !== 1) problems.push(`${d.device} agent ${a.agent}: ${a.files.length} files`);
      for (const f of a.files) add(d.device, f);
    }
  }
  const onDisk = readdirSync(folder, { recursive: true }).filter((f) => /\.pcap(ng)?$/.test(f) && f !== "merged.pcapng");
  for (const f of onDisk) {
    const want = named.get(f);
    if (!want) problems.push(`${f} is in the run folder but not in the manifest`);
    else if (statSync(join(folder, f)).size !== want.bytes) problems.push(`${f}: ${statSync(join(folder, f)).size} bytes on disk, manifest says ${want.bytes}`);
  }
  const expected = m.devices.reduce((a, d) => a + 1 + d.agents.length, 0);
  if (onDisk.length !== named.size) problems.push(`${onDisk.length} capture files on disk, ${named.size} in the manifest`);
  if (named.size !== expected) problems.push(`${named.size} files in the manifest, ${expected} expected`);
  const once = { devices: m.devices.length, expected, captureFiles: onDisk.length, manifestFiles: named.size, ok: problems.length === 0 };
  if (problems.length) {
    const why = `not collected exactly once: ${problems.length} problem(s), e.g. ${problems.slice(0, 3).join("; ")}`;
    if (process.env.ALLOW_FAIL) console.log(`WARNING ${why}`);
    else throw new Error(why);
  }
  return once;
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

// The floor first (its devices' captures are stopped again and its agent sessions over before the
// fan-out starts), then the serial baseline, then the fan-out.
const floor = process.env.SKIP_FLOOR
  ? undefined
  : await runFloorInChild({ devices: fleet.devices.slice(0, FLOOR_N), agents, sshPrivateKeyFile: ssh.privateKeyFile, dir, concurrency: CONCURRENCY });
if (floor) console.log(`${floorLine(floor)}; load ${loadAvg()}`);
const serialMs = process.env.SKIP_SERIAL ? NaN : await serial();
const serialPerDevice = serialMs / SERIAL_N;
const serialExtrapolated = serialPerDevice * N;
console.log(`serial baseline: ${SERIAL_N} devices one at a time in ${f1(serialMs / 1000)} s (${f1(serialPerDevice)} ms per device) → ${N} devices ≈ ${f1(serialExtrapolated / 1000)} s (extrapolated)`);
const r = await fanout();
const boundMs = (REQUESTS_PER_DEVICE * LATENCY_MS * N) / CONCURRENCY;
const orchCpuMsPerDevice = (r.orchCpuS * 1000) / N;
const floorRatio = floor ? orchCpuMsPerDevice / floor.perDeviceMs.total : NaN;
console.log(`fan-out ${N} devices, concurrency ${CONCURRENCY}: all capturing after ${f2(r.startMs / 1000)} s, stopped and collected ${f2(r.stopCollectMs / 1000)} s later; run returned (report written) at ${f2(r.runReturnedMs / 1000)} s`);
console.log(`CPU seconds during the fan-out: orchestrator ${f1(r.orchCpuS)}, agent ${f1(r.agentCpuS)}, fleet ${f1(r.fleetCpuS)}; agent peak RSS ${f1(r.agentRssMb)} MB; load ${loadAvg()}`);
console.log(`orchestrator CPU per device ${f2(orchCpuMsPerDevice)} ms = ${f2(floorRatio)}× the floor ${floor ? f2(floor.perDeviceMs.total) : "(skipped)"} ms (target ≤ 1.5×)`);
console.log(`orchestrator peak RSS by phase: start ${f1(r.rss.start)} MB, stop+collect ${f1(r.rss.stop)} MB, report ${f1(r.rss.report)} MB`);
console.log(`collected exactly once: ${r.once.captureFiles} capture files in the run folder, ${r.once.manifestFiles} in manifest.json, ${r.once.expected} expected for ${r.once.devices} devices`);
console.log(`concurrency bound: ${REQUESTS_PER_DEVICE} requests × ${LATENCY_MS} ms × ${N} / ${CONCURRENCY} = ${f2(boundMs / 1000)} s`);
const vsSerial = serialExtrapolated / r.wallMs;
const vsBound = r.wallMs / boundMs;
result({
  bench: "fanout",
  devices: N,
  fleetProcesses: fleet.procs.length,
  agentMode: AGENT_MODE,
  agents: AGENTS,
  wallS: r.wallMs / 1000,
  startS: r.startMs / 1000,
  stopCollectS: r.stopCollectMs / 1000,
  runReturnedS: r.runReturnedMs / 1000,
  serialS: serialExtrapolated / 1000,
  serialMeasuredS: serialMs / 1000,
  serialN: SERIAL_N,
  boundS: boundMs / 1000,
  vsSerial,
  vsBound,
  rssMb: r.rss.max,
  rssPhasesMb: r.rss,
  orchCpuS: r.orchCpuS,
  orchCpuMsPerDevice,
  floor,
  floorRatio,
  agentCpuS: r.agentCpuS,
  agentRssMb: r.agentRssMb,
  fleetCpuS: r.fleetCpuS,
  collectedOnce: r.once,
  load: loadAvg(),
});
await Promise.all([fleet.close(), ...agents.map((a) => a.close())]);
console.log(
  `fan-out ${N} devices: ${f2(r.wallMs / 1000)} s (serial ≈ ${f1(serialExtrapolated / 1000)} s) → ${f1(vsSerial)}× faster than serial (target ≥ 50), ${f2(vsBound)}× the concurrency bound ${f2(boundMs / 1000)} s (target ≤ 2), orchestrator ${f2(orchCpuMsPerDevice)} CPU ms/device = ${f2(floorRatio)}× floor (target ≤ 1.5), peak RSS ${f1(r.rss.max)} MB (target < 300)`,
);
process.exit(0);

#!/usr/bin/env node
// Soak (issue 18 item 8): DEVICES emulated AudioCodes devices (own process) capturing through one
// real server-capture agent (real tcpdump on lo, a small ring: RING_FILES × RING_MB per device, so
// it rotates) and the real `cpe-capture run` CLI, for DURATION_S under steady load from another
// process (bench/lib/soak-traffic.mjs): packets to every device's address and a trickle of
// unrelated syslog to the orchestrator. Every SAMPLE_S, from /proc and the file system only: the
// orchestrator's and the agent's RSS and open descriptors, the agent's capture files (count,
// bytes) and tcpdump children. After the warm-up (the first WARMUP of the run) each series must
// grow under 10 % (bench/lib/soak-sample.mjs flatness: median of the last tenth of the samples
// over the median of the first tenth after the warm-up). Then one OVOC "Connection Lost" per
// device (the alarm stops its own device; the orchestrator has no fleet-wide alarm) stops them
// all; the run must end with every device collected, every file in the manifest in the run
// folder and no tcpdump left. Writes the curves as SVG (and the samples as JSON) to OUT_DIR.
// Loopback only; bounded by BUDGET_S.
// Usage: npm run build && node bench/soak.mjs   (DEVICES=200 DURATION_S=1800 SAMPLE_S=5 WARMUP=0.2 DEVICE_BPS=10240 AGENT_TIMEOUT_S=30 ALARM_GAP_MS=0 OUT_DIR=bench/results CAPTURE_MODE=shared|per-device HEAP_DIR=<dir>)
// As a module: `runSoak(options)` returns the result object (the RESULT line's).
import { spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { SyslogSender, ovocConnectionLostAlarm } from "@capsync/emulators";
import { ROOT, exited, f1, f2, guard, loadAvg, machine, result, sleep, sshKeys, startAgent, startFleet, stopChild, tempDir, track, writeKey } from "./lib/common.mjs";
import { captureFiles, childrenNamed, fdCount, fdKinds, flatness, rssMb } from "./lib/soak-sample.mjs";
import { soakSvg } from "./lib/soak-plot.mjs";

export const SOAK_DEFAULTS = {
  devices: 200,
  durationS: 1800,
  sampleS: 5,
  /** Share of the run (from the moment every device captures) excluded from the flatness figures. */
  warmup: 0.2,
  ringMb: 1,
  ringFiles: 3,
  /** Packet bytes per device per second (the agent's ring for a device fills at this rate). */
  deviceBps: 10_240,
  packetBytes: 8000,
  syslogPerS: 20,
  firstAddress: "127.0.64.1",
  /** A directory for two heap snapshots of the orchestrator (at the end of the warm-up and of the soak): finding a leak's cause. */
  heapDir: undefined,
  /** The agent's --capture-mode (shared | per-device); undefined: the agent's default. */
  captureMode: undefined,
  outDir: join(ROOT, "bench/results"),
  /**
   * The orchestrator's agent timeout (its default is 8 s). A start burst of 200 real tcpdumps on a
   * machine loaded by others can take the agent longer than that, and a CAPTURE the orchestrator has
   * given up on is never stopped (see /tmp/team/soak.md): generous here, since the soak measures
   * the steady state, not the start burst.
   */
  agentTimeoutS: 30,
  /**
   * Between two of the stop's alarms (0: all back to back, a site-wide outage). The orchestrator's
   * STOP deadline is a fixed 8 s until the agent's "100 Trying" (agents/options.ts): an agent that
   * cannot even acknowledge a burst of 200 STOPs in 8 s on a loaded machine loses those devices'
   * server files (see /tmp/team/soak.md).
   */
  alarmGapMs: 0,
  /** Growth limit after the warm-up. */
  maxGrowth: 0.1,
};

const CPE_CLI = join(ROOT, "packages/cpe-capture/dist/index.js");
const log = (s) => console.log(s);

async function freeUdpPort() {
  const s = createSocket("udp4");
  await new Promise((r) => s.bind(0, "127.0.0.1", r));
  const p = s.address().port;
  await new Promise((r) => s.close(r));
  return p;
}

/** The real `cpe-capture run --json`, its event lines followed. */
function startOrchestrator(config, env, heapDir) {
  // heapDir: SIGUSR2 writes a heap snapshot there (node's own flag; the snapshot lands in the cwd).
  const heap = heapDir ? ["--heapsnapshot-signal=SIGUSR2"] : [];
  const child = track(spawn(process.execPath, [...heap, CPE_CLI, "run", "--config", config, "--json"], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env }, ...(heapDir ? { cwd: heapDir } : {}) }));
  const capturing = new Set();
  const failed = new Map();
  let done;
  let err = "";
  let partial = "";
  const waiters = new Set();
  child.stderr.on("data", (d) => (err = (err + d).slice(-8000)));
  child.stdout.on("data", (d) => {
    partial += d;
    const lines = partial.split("\n");
    partial = lines.pop();
    for (const l of lines) {
      let e;
      try {
        e = JSON.parse(l);
      } catch {
        continue;
      }
      if (e.event === "state" && e.status === "capturing") capturing.add(e.device);
      if (e.event === "state" && e.status === "failed") failed.set(e.device, e.detail ?? "");
      if (e.done) done = e;
    }
    for (const w of waiters) w();
  });
  child.once("exit", () => {
    for (const w of waiters) w();
  });
  /** Resolves when `pred()` holds, rejects past `ms` or if the orchestrator exits first. */
  const until = (pred, ms, what) =>
    new Promise((res, rej) => {
      const check = () => {
        if (pred()) finish(res);
        else if (child.exitCode !== null || child.signalCode !== null) finish(() => rej(new Error(`cpe-capture exited ${child.exitCode ?? child.signalCode} while waiting for ${what}: ${err.slice(-2000)}`)));
      };
      const t = setTimeout(() => finish(() => rej(new Error(`timed out after ${ms / 1000} s waiting for ${what}; ${capturing.size} capturing, ${failed.size} failed (${[...failed.entries()].slice(0, 3).map(([k, v]) => `${k}: ${v}`).join("; ")}); stderr: ${err.slice(-2000)}`))), ms);
      const finish = (f) => {
        clearTimeout(t);
        waiters.delete(check);
        f();
      };
      waiters.add(check);
      check();
    });
  return { child, pid: child.pid, capturing, failed, get done() { return done; }, stderr: () => err, until };
}

/** Capture files in the run folder, recursively, the report's merged file aside: what the devices and agents sent. */
function runFolderCaptures(dir) {
  const names = [];
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.pcap(ng)?$/.test(e.name) && !e.name.startsWith("merged")) names.push({ name: e.name, bytes: statSync(p).size });
    }
  };
  walk(dir);
  return names;
}

/** The files the manifest says were collected: each device's file and its agents' files. */
function manifestFiles(manifest) {
  const out = [];
  for (const d of manifest.devices) {
    if (d.deviceFile) out.push({ device: d.device, side: "device", ...d.deviceFile });
    for (const a of d.agents) for (const f of a.files) out.push({ device: d.device, side: "agent", ...f });
  }
  return out;
}

export async function runSoak(options = {}) {
  const o = { ...SOAK_DEFAULTS, ...options };
  const dir = tempDir("soak");
  const keyFile = writeKey(dir);
  const ssh = sshKeys(dir);
  const agentDir = join(dir, "agent");
  const tSetup = performance.now();
  // The device's own capture: 5 packets/s, at most 256 KB (the device file is not what this soaks).
  const fleet = await startFleet(o.devices, { firstAddress: o.firstAddress, maxSeconds: o.durationS + 1200, captureBytes: 256 * 1024 });
  const agent = await startAgent({
    dir: agentDir,
    keyFile,
    maxSessions: o.devices + 16,
    authorizedKeysFile: ssh.authorizedKeysFile,
    extra: ["--ring-size", String(o.ringMb), "--ring-files", String(o.ringFiles), ...(o.captureMode ? ["--capture-mode", o.captureMode] : [])],
  });
  const syslogPort = await freeUdpPort();
  const traffic = track(spawn(process.execPath, [join(ROOT, "bench/lib/soak-traffic.mjs")], { stdio: ["pipe", "pipe", "inherit"] }));
  let trafficOut = "";
  traffic.stdout.on("data", (d) => (trafficOut += d));
  traffic.stdin.write(
    JSON.stringify({ devices: fleet.devices.map((d) => d.address), bytesPerDevicePerS: o.deviceBps, packetBytes: o.packetBytes, syslogPort, syslogPerS: o.syslogPerS, maxSeconds: o.durationS + 1200 }) + "\n",
  );
  while (!trafficOut.includes('"ready"')) {
    if (traffic.exitCode !== null) throw new Error(`traffic generator exited ${traffic.exitCode}`);
    await sleep(50);
  }

  const yaml = [
    `output: ${join(dir, "runs")}`,
    `agents: { keyFile: ${keyFile}, sshKeyFile: ${ssh.privateKeyFile}, sftpPort: ${agent.sftpPort} }`,
    `syslog: { listen: 127.0.0.1:${syslogPort} }`,
    `timeouts: { agent: ${o.agentTimeoutS}s }`,
    // A safety net only: the alarms end the run long before.
    `stop: { duration: ${o.durationS + 900}s }`,
    `verify: false`,
    `devices:`,
    ...fleet.devices.map(
      (d) =>
        `  - { address: ${d.address}, type: ${d.type}, interfaces: [${d.type === "msbr" ? "eth-wan" : "eth-lan"}], username: Admin, password: { env: BENCH_PW }, tls: insecure, restPort: ${d.restPort}, sshPort: ${d.sshPort}, agents: [127.0.0.1:${agent.port}] }`,
    ),
  ].join("\n");
  writeFileSync(join(dir, "run.yaml"), yaml + "\n");
  if (o.heapDir) mkdirSync(o.heapDir, { recursive: true });
  const orch = startOrchestrator(join(dir, "run.yaml"), { BENCH_PW: "bench-pw" }, o.heapDir);
  await orch.until(() => orch.capturing.size + orch.failed.size >= o.devices, 300_000, `${o.devices} devices capturing`);
  if (orch.failed.size) throw new Error(`${orch.failed.size} device(s) failed to start, e.g. ${[...orch.failed.entries()][0].join(": ")}`);
  const setupS = (performance.now() - tSetup) / 1000;
  log(`${o.devices} devices capturing (agent: real tcpdump, ring ${o.ringFiles} × ${o.ringMb} MB) after ${f1(setupS)} s of set-up; soaking ${o.durationS} s, a sample every ${o.sampleS} s; load ${loadAvg()}`);

  // --- the soak --------------------------------------------------------------------------------------
  const warmupS = o.durationS * o.warmup;
  const s = { tS: [], orchRss: [], orchFd: [], agentRss: [], agentFd: [], ringFiles: [], ringMb: [], liveFiles: [], otherFiles: [], otherMb: [], tcpdumps: [], fleetRss: [], load: [] };
  const t0 = performance.now();
  let fdAtWarmup;
  const sample = () => {
    const t = (performance.now() - t0) / 1000;
    const files = captureFiles(agentDir);
    s.tS.push(+t.toFixed(1));
    s.orchRss.push(+rssMb(orch.pid).toFixed(1));
    s.orchFd.push(fdCount(orch.pid));
    s.agentRss.push(+rssMb(agent.pid).toFixed(1));
    s.agentFd.push(fdCount(agent.pid));
    s.ringFiles.push(files.files);
    s.ringMb.push(+(files.bytes / 1e6).toFixed(1));
    s.liveFiles.push(files.liveFiles);
    s.otherFiles.push(files.otherFiles);
    s.otherMb.push(+(files.otherBytes / 1e6).toFixed(1));
    s.tcpdumps.push(childrenNamed(agent.pid, "tcpdump").length);
    s.fleetRss.push(+rssMb(fleet.proc.pid).toFixed(1));
    s.load.push(Number(loadAvg().split(" ")[0]));
    if (!fdAtWarmup && t >= warmupS) {
      fdAtWarmup = { orchestrator: fdKinds(orch.pid), agent: fdKinds(agent.pid) };
      if (o.heapDir) orch.child.kill("SIGUSR2");
    }
  };
  sample();
  for (let k = 1; ; k++) {
    const due = t0 + k * o.sampleS * 1000;
    if (due > t0 + o.durationS * 1000) break;
    await sleep(Math.max(0, due - performance.now()));
    if (orch.child.exitCode !== null) throw new Error(`cpe-capture exited ${orch.child.exitCode} during the soak: ${orch.stderr().slice(-2000)}`);
    sample();
    if (k % Math.max(1, Math.round(60 / o.sampleS)) === 0) {
      const i = s.tS.length - 1;
      log(`  ${f1(s.tS[i])} s: orchestrator ${s.orchRss[i]} MB / ${s.orchFd[i]} fds, agent ${s.agentRss[i]} MB / ${s.agentFd[i]} fds, ${s.ringFiles[i]} ring files ${s.ringMb[i]} MB, ${s.tcpdumps[i]} tcpdumps; load ${s.load[i]}`);
    }
  }
  const fdAtEnd = { orchestrator: fdKinds(orch.pid), agent: fdKinds(agent.pid) };
  if (o.heapDir) {
    orch.child.kill("SIGUSR2");
    // The snapshot is written synchronously by the orchestrator; give it time before the alarms.
    await sleep(20_000);
  }
  const flat = {
    orchestratorRss: flatness(s.tS, s.orchRss, warmupS),
    orchestratorFds: flatness(s.tS, s.orchFd, warmupS),
    agentRss: flatness(s.tS, s.agentRss, warmupS),
    agentFds: flatness(s.tS, s.agentFd, warmupS),
  };
  const post = (arr) => arr.filter((_, i) => s.tS[i] >= warmupS);
  const ring = {
    maxFiles: Math.max(...s.ringFiles),
    maxMb: Math.max(...s.ringMb),
    boundFiles: o.devices * o.ringFiles,
    // tcpdump -C counts millions of bytes and rotates after the packet that crossed it.
    boundMb: (o.devices * o.ringFiles * (o.ringMb * 1e6 + o.packetBytes + 100)) / 1e6,
    filesFlat: flatness(s.tS, s.ringFiles, warmupS),
    mbFlat: flatness(s.tS, s.ringMb, warmupS),
    maxOtherFiles: Math.max(...s.otherFiles),
    maxOtherMb: Math.max(...s.otherMb),
    minTcpdumps: Math.min(...post(s.tcpdumps)),
    maxTcpdumps: Math.max(...post(s.tcpdumps)),
  };

  // --- the stop: one alarm per device ----------------------------------------------------------------
  const sender = await SyslogSender.open({ host: "127.0.0.1", port: syslogPort });
  const tStop = performance.now();
  for (const d of fleet.devices) {
    await sender.send(ovocConnectionLostAlarm({ deviceIp: d.address }));
    if (o.alarmGapMs) await sleep(o.alarmGapMs);
  }
  await sender.close();
  await orch.until(() => orch.done, 900_000, "the end of the run");
  const stopCollectS = (performance.now() - tStop) / 1000;
  const exitCode = await new Promise((r) => (orch.child.exitCode !== null ? r(orch.child.exitCode) : orch.child.once("exit", (c) => r(c))));
  traffic.stdin.end();
  await exited(traffic);
  const trafficStats = JSON.parse(trafficOut.trim().split("\n").at(-1));
  const tcpdumpsLeft = childrenNamed(agent.pid, "tcpdump").length;
  const manifest = JSON.parse(readFileSync(join(orch.done.folder, "manifest.json"), "utf8"));
  const listed = manifestFiles(manifest);
  const inFolder = runFolderCaptures(orch.done.folder);
  const folderNames = new Set(inFolder.map((f) => f.name));
  const missing = listed.filter((f) => !folderNames.has(f.name));
  const sizeMismatch = listed.filter((f) => inFolder.find((g) => g.name === f.name && g.bytes !== f.bytes));
  const perDevice = manifest.devices.map((d) => d.agents.reduce((n, a) => n + a.files.length, 0));
  const collect = {
    exitCode,
    devices: manifest.devices.length,
    collected: manifest.devices.filter((d) => d.status === "collected").length,
    byAlarm: manifest.devices.filter((d) => d.stopReason === "alarm").length,
    manifestFiles: listed.length,
    deviceFiles: listed.filter((f) => f.side === "device").length,
    agentFiles: listed.filter((f) => f.side === "agent").length,
    agentFilesPerDevice: { min: Math.min(...perDevice), max: Math.max(...perDevice) },
    agentMb: listed.filter((f) => f.side === "agent").reduce((n, f) => n + f.bytes, 0) / 1e6,
    folderFiles: inFolder.length,
    missing: missing.length,
    sizeMismatch: sizeMismatch.length,
    stopCollectS,
    tcpdumpsLeft,
    // What went wrong for the devices not collected (a few, with the agent's side).
    notCollected: manifest.devices
      .filter((d) => d.status !== "collected")
      .slice(0, 5)
      .map((d) => ({ device: d.device, status: d.status, description: d.description, agents: d.agents.map((a) => `${a.capture}${a.error ? `: ${a.error}` : ""}`) })),
  };
  await Promise.all([stopChild(agent.proc), fleet.close()]);

  // --- figures -------------------------------------------------------------------------------------------
  const date = new Date().toISOString().slice(0, 16).replace(/:/g, "");
  const stem = `soak-${date}`;
  mkdirSync(o.outDir, { recursive: true });
  const svgPath = join(o.outDir, `${stem}.svg`);
  const res = {
    bench: "soak",
    devices: o.devices,
    durationS: o.durationS,
    sampleS: o.sampleS,
    warmup: o.warmup,
    warmupS,
    ringMb: o.ringMb,
    ringFiles: o.ringFiles,
    captureMode: o.captureMode ?? "(agent default)",
    deviceBps: o.deviceBps,
    syslogPerS: o.syslogPerS,
    agentTimeoutS: o.agentTimeoutS,
    alarmGapMs: o.alarmGapMs,
    setupS,
    flat,
    ring,
    traffic: trafficStats,
    collect,
    fdKinds: { atWarmup: fdAtWarmup, atEnd: fdAtEnd },
    load: { min: Math.min(...s.load), max: Math.max(...s.load) },
    machine: machine(),
    svg: svgPath,
    samples: join(o.outDir, `${stem}.json`),
  };
  writeFileSync(res.samples, JSON.stringify({ ...res, series: s }, null, 1) + "\n");
  writeFileSync(svgPath, soakFigure({ ...res, series: s }));
  const within = ["orchestratorRss", "orchestratorFds", "agentRss", "agentFds"].every((k) => flat[k].growth < o.maxGrowth);
  res.met = within && ring.maxFiles <= ring.boundFiles && ring.maxMb <= ring.boundMb && collect.exitCode === 0 && collect.collected === o.devices && collect.missing === 0 && collect.tcpdumpsLeft === 0;
  return res;
}

/** The curves of a result with its series (the samples JSON, which can be redrawn from) as SVG. */
export function soakFigure(r) {
  const s = r.series;
  const pct = (x) => `${(x * 100).toFixed(1)} %`;
  const m = r.machine;
  return soakSvg({
    title: `capsync soak: ${r.devices} devices, ${f1(r.durationS / 60)} min, agent ring ${r.ringFiles} × ${r.ringMb} MB`,
    subtitle: [
      `${m.cpus} × ${m.cpuModel}, Node ${m.node}, load ${r.load.min}–${r.load.max}; ${r.deviceBps} B/s of packets per device, ${r.syslogPerS ?? SOAK_DEFAULTS.syslogPerS} syslog/s`,
      `growth after the warm-up (first ${pct(r.warmup)}): orchestrator RSS ${pct(r.flat.orchestratorRss.growth)}, fds ${pct(r.flat.orchestratorFds.growth)}; agent RSS ${pct(r.flat.agentRss.growth)}, fds ${pct(r.flat.agentFds.growth)}`,
    ],
    tS: s.tS,
    warmupS: r.warmupS,
    panels: [
      { label: "RSS", unit: "MB", series: [{ name: "orchestrator", values: s.orchRss, color: "#1f77b4" }, { name: "agent", values: s.agentRss, color: "#d62728" }] },
      { label: "open file descriptors", unit: "fds", series: [{ name: "orchestrator", values: s.orchFd, color: "#1f77b4" }, { name: "agent", values: s.agentFd, color: "#d62728" }] },
      { label: `agent capture files (bound ${r.ring.boundFiles} files, ${f1(r.ring.boundMb)} MB)`, unit: "files / MB", series: [{ name: "files", values: s.ringFiles, color: "#2ca02c" }, { name: "MB", values: s.ringMb, color: "#9467bd" }] },
    ],
  });
}

/** The human lines for a result. */
export function describeSoak(r) {
  const g = (f) => `${f1(f.baseline)} → ${f1(f.end)} (${(f.growth * 100).toFixed(1)} %, peak +${(f.peakGrowth * 100).toFixed(1)} %, ${f2(f.slopePerHour)}/h)`;
  return [
    `after the warm-up (${f1(r.warmupS)} s), baseline → end: orchestrator RSS ${g(r.flat.orchestratorRss)} MB, fds ${g(r.flat.orchestratorFds)}; agent RSS ${g(r.flat.agentRss)} MB, fds ${g(r.flat.agentFds)}`,
    `agent capture mode ${r.captureMode}; device capture files: at most ${r.ring.maxFiles} files / ${f1(r.ring.maxMb)} MB (bound ${r.ring.boundFiles} / ${f1(r.ring.boundMb)} MB), other (spool) at most ${r.ring.maxOtherFiles} / ${f1(r.ring.maxOtherMb)} MB; tcpdumps ${r.ring.minTcpdumps}–${r.ring.maxTcpdumps}; traffic ${r.traffic.packets} packets (${r.traffic.skipped} skipped), ${r.traffic.syslog} syslog datagrams; load ${r.load.min}–${r.load.max}`,
    `stop: ${r.devices} alarms${r.alarmGapMs ? ` ${r.alarmGapMs} ms apart` : " back to back"} → run exit ${r.collect.exitCode} after ${f1(r.collect.stopCollectS)} s; ${r.collect.collected}/${r.collect.devices} collected (${r.collect.byAlarm} by alarm); manifest ${r.collect.manifestFiles} files (${r.collect.deviceFiles} device, ${r.collect.agentFiles} agent, ${r.collect.agentFilesPerDevice.min}–${r.collect.agentFilesPerDevice.max} per device, ${f1(r.collect.agentMb)} MB), run folder ${r.collect.folderFiles}, missing ${r.collect.missing}, size mismatches ${r.collect.sizeMismatch}; tcpdumps left ${r.collect.tcpdumpsLeft}`,
    ...r.collect.notCollected.map((d) => `  not collected: ${d.device} ${d.status} (${d.description}); agents: ${d.agents.join("; ")}`),
    `curves: ${r.svg}`,
  ];
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const env = process.env;
  const num = (k, d) => (env[k] === undefined ? d : Number(env[k]));
  const opts = {
    devices: num("DEVICES", SOAK_DEFAULTS.devices),
    durationS: num("DURATION_S", SOAK_DEFAULTS.durationS),
    sampleS: num("SAMPLE_S", SOAK_DEFAULTS.sampleS),
    warmup: num("WARMUP", SOAK_DEFAULTS.warmup),
    ringMb: num("RING_MB", SOAK_DEFAULTS.ringMb),
    ringFiles: num("RING_FILES", SOAK_DEFAULTS.ringFiles),
    deviceBps: num("DEVICE_BPS", SOAK_DEFAULTS.deviceBps),
    syslogPerS: num("SYSLOG_PER_S", SOAK_DEFAULTS.syslogPerS),
    agentTimeoutS: num("AGENT_TIMEOUT_S", SOAK_DEFAULTS.agentTimeoutS),
    alarmGapMs: num("ALARM_GAP_MS", SOAK_DEFAULTS.alarmGapMs),
    firstAddress: env.FIRST_ADDRESS ?? SOAK_DEFAULTS.firstAddress,
    captureMode: env.CAPTURE_MODE,
    outDir: env.OUT_DIR ?? SOAK_DEFAULTS.outDir,
    heapDir: env.HEAP_DIR,
  };
  for (const [k, v] of Object.entries(opts)) if (typeof v === "number" && !(v > 0) && !(k === "alarmGapMs" && v === 0)) throw new Error(`soak: ${k} must be a positive number, got ${v}`);
  guard(num("BUDGET_S", opts.durationS + 1200), "soak");
  const r = await runSoak(opts);
  for (const l of describeSoak(r)) console.log(l);
  result(r);
  console.log(`soak ${r.devices} devices ${f1(r.durationS / 60)} min: orchestrator RSS +${f1(r.flat.orchestratorRss.growth * 100)} %, agent RSS +${f1(r.flat.agentRss.growth * 100)} % after warm-up (target < 10 %); ${r.collect.collected}/${r.devices} collected; ${r.met ? "met" : "NOT met"}`);
  process.exit(r.met ? 0 : 1);
}

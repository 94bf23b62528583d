#!/usr/bin/env node
// Where the orchestrator's RSS goes, phase by phase: the fan-out's run (same fleet, agent and
// config as bench/fanout.mjs, without its floor and serial baseline, so nothing else shares this
// process's heap) sampled every 50 ms for RSS, V8's heap spaces, external/array buffers and the
// native rest (RSS − heapTotal − external), with the components at each phase's RSS peak. With
// --expose-gc, the live heap after a forced GC when every device captures. CPU ms per device too,
// so a memory change that costs CPU shows.
// Usage: npm run build && node [--expose-gc] [V8 flags] bench/lib/rss-phases.mjs
//   (DEVICES=1000, LATENCY_MS=50, CONCURRENCY=64, HEAP_SNAPSHOT_DIR=<dir> writes one per phase peak
//    point: capturing and after the run, LABEL=<text> names the result line)
import { spawnSync } from "node:child_process";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import v8 from "node:v8";
import { PerformanceObserver, constants as perf } from "node:perf_hooks";
import { loadConfig } from "@capsync/cpe-capture/config/loader";
import { runConfig } from "@capsync/cpe-capture/commands/run";
import { f1, guard, loadAvg, nowMs, sleep, sshKeys, startAgents, startFleets, tempDir, writeKey, writeRunConfig } from "./common.mjs";

// Under heaptrack (LD_PRELOAD), only this process is profiled: not the fleet and agent it starts.
if (process.env.LD_PRELOAD?.includes("heaptrack")) delete process.env.LD_PRELOAD;
const N = Number(process.env.DEVICES ?? 1000);
const LATENCY_MS = Number(process.env.LATENCY_MS ?? 50);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 64);
const BUDGET_S = Number(process.env.BUDGET_S ?? 400);
const LABEL = process.env.LABEL ?? "";
if (!Number.isInteger(N) || N < 1 || N > 5000) {
  console.error(`rss-phases: DEVICES must be an integer 1..5000, got '${process.env.DEVICES}'`);
  process.exit(2);
}
guard(BUDGET_S, "rss-phases");
const MB = 1048576;

/** RssAnon/RssFile from /proc (file-backed pages are the loaded code, not our allocations). */
function procStatus() {
  const s = readFileSync("/proc/self/status", "utf8");
  const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, "m").exec(s)?.[1] ?? 0) / 1024;
  return { anon: kb("RssAnon"), file: kb("RssFile") };
}

function sample() {
  const m = process.memoryUsage();
  const spaces = Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name, s.space_size / MB]));
  const st = procStatus();
  return {
    rss: m.rss / MB,
    heapTotal: m.heapTotal / MB,
    heapUsed: m.heapUsed / MB,
    external: m.external / MB,
    arrayBuffers: m.arrayBuffers / MB,
    native: (m.rss - m.heapTotal - m.external) / MB,
    newSpace: spaces.new_space ?? 0,
    oldSpace: spaces.old_space ?? 0,
    codeSpace: spaces.code_space ?? 0,
    largeObject: spaces.large_object_space ?? 0,
    rssAnon: st.anon,
    rssFile: st.file,
  };
}

/**
 * Anonymous resident memory by kind, from /proc/self/smaps: the brk heap (glibc's main arena),
 * glibc's thread arenas (64 MiB reservations: a rw part followed by its ---p rest), the rest
 * (V8's pages and other mmaps), in MB.
 */
function smapsKinds() {
  const maps = [];
  let cur;
  for (const l of readFileSync("/proc/self/smaps", "utf8").split("\n")) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ (\d+)\s*(.*)$/.exec(l);
    if (m) {
      cur = { start: parseInt(m[1], 16), end: parseInt(m[2], 16), perms: m[3], inode: m[4], name: m[5], rss: 0 };
      maps.push(cur);
    } else if (cur && l.startsWith("Rss:")) cur.rss = Number(/(\d+)/.exec(l)[1]) / 1024;
  }
  const out = { brk: 0, arenas: 0, arenaCount: 0, otherAnon: 0 };
  for (let i = 0; i < maps.length; i++) {
    const x = maps[i];
    if (x.name === "[heap]") out.brk += x.rss;
    else if (x.inode === "0" && x.name === "") {
      const next = maps[i + 1];
      const isArena = x.perms.startsWith("rw") && next && next.start === x.end && next.perms.startsWith("---") && next.end - x.start === 64 * MB && x.start % (64 * MB) === 0;
      if (isArena) {
        out.arenas += x.rss;
        out.arenaCount++;
      } else out.otherAnon += x.rss;
    }
  }
  return out;
}
const fds = () => readdirSync("/proc/self/fd").length;
const kinds = (k) => `brk ${f1(k.brk)}, ${k.arenaCount} thread arenas ${f1(k.arenas)}, other anon ${f1(k.otherAnon)} MB`;

/** Per phase: the sample at the RSS peak, and each field's own maximum. */
const phases = new Map();
let phase = "setup";
function take() {
  const s = sample();
  let p = phases.get(phase);
  if (!p) phases.set(phase, (p = { atPeak: s, max: { ...s }, samples: 0 }));
  p.samples++;
  if (s.rss > p.atPeak.rss) p.atPeak = s;
  for (const k of Object.keys(s)) p.max[k] = Math.max(p.max[k], s[k]);
}
/** GC pause time per phase (ms), by kind: what a smaller young generation costs in CPU. */
const gcMs = new Map();
const GC_KIND = { [perf.NODE_PERFORMANCE_GC_MINOR]: "minor", [perf.NODE_PERFORMANCE_GC_MAJOR]: "major", [perf.NODE_PERFORMANCE_GC_INCREMENTAL]: "incremental", [perf.NODE_PERFORMANCE_GC_WEAKCB]: "weakcb" };
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const k = `${phase}\t${GC_KIND[e.detail?.kind] ?? "other"}`;
    const g = gcMs.get(k) ?? { ms: 0, n: 0 };
    g.ms += e.duration;
    g.n++;
    gcMs.set(k, g);
  }
}).observe({ entryTypes: ["gc"] });
const timer = setInterval(take, 50);
timer.unref();
function enter(name) {
  take();
  phase = name;
  globalThis.__rssPhase = name;
  take();
}

const dir = tempDir("rss-phases");
const keyFile = writeKey(dir);
const ssh = sshKeys(dir);
process.env.BENCH_PW = "bench-pw";
const sink = new Writable({ write(_c, _e, cb) { cb(); } });
const fleet = await startFleets(N, { latencyMs: LATENCY_MS, maxSeconds: BUDGET_S + 30 });
const agents = await startAgents(1, { dir, keyFile, maxSessions: N + 10, fakeTcpdump: true, authorizedKeysFile: ssh.authorizedKeysFile, extra: ["--capture-mode", "per-device"] });

const file = writeRunConfig({ dir: join(dir, "run"), keyFile, ssh, sftpPort: agents[0].sftpPort, concurrency: CONCURRENCY, budgetS: BUDGET_S, devices: fleet.devices, agentOf: () => agents[0] });
const config = (await loadConfig(file)).config;
const allIn = (orch, ...wanted) => orch.manifest.devices.every((x) => wanted.includes(x.state));
async function until(pred, everyMs = 10) {
  while (!pred()) await sleep(everyMs);
}

enter("idle");
await sleep(300);
const cpu0 = process.cpuUsage();
const t0 = nowMs();
let orch;
let summary;
let failure;
const started = new Promise((res) => {
  runConfig(config, { stdout: sink, stderr: sink }, { json: false, quiet: true, onStarted: (o) => { orch = o; res(o); } }).then(
    (s) => (summary = s),
    (e) => (failure = e),
  );
});
enter("start");
await started;
await until(() => allIn(orch, "capturing", "failed", "done"));
const tCapturing = nowMs();
const cpuStart = process.cpuUsage(cpu0);
enter("capturing");
let live;
console.log(`  at capturing: ${fds()} fds; ${kinds(smapsKinds())}`);
if (globalThis.gc) {
  // Live data when the whole fleet captures: what a device costs once the garbage is gone.
  globalThis.gc();
  globalThis.gc();
  live = sample();
}
if (process.env.TRIM_PROBE) {
  // What glibc holds free but not returned: malloc_trim(0) from gdb attached to this process.
  const before = process.memoryUsage.rss() / MB;
  const r = spawnSync("gdb", ["-p", String(process.pid), "-batch", "-ex", "call (int)malloc_trim(0)"], { encoding: "utf8" });
  console.log(`  malloc_trim(0) at capturing: rss ${f1(before)} → ${f1(process.memoryUsage.rss() / MB)} MB${r.status ? ` (gdb exit ${r.status})` : ""}; ${kinds(smapsKinds())}`);
}
if (process.env.HEAP_SNAPSHOT_DIR) v8.writeHeapSnapshot(join(process.env.HEAP_SNAPSHOT_DIR, `capturing-${N}.heapsnapshot`));
await sleep(300);
take();
const cpuStop0 = process.cpuUsage();
enter("stop+collect");
orch.stopAll("manual", "rss-phases: stop all");
if (process.env.HEAP_SNAPSHOT_DIR) {
  const half = () => orch.manifest.devices.filter((x) => x.state === "done" || x.state === "failed").length >= N / 2;
  await until(half);
  v8.writeHeapSnapshot(join(process.env.HEAP_SNAPSHOT_DIR, `stopping-${N}.heapsnapshot`));
}
await until(() => allIn(orch, "done", "failed"));
const tCollected = nowMs();
const cpuStop = process.cpuUsage(cpuStop0);
const cpuRep0 = process.cpuUsage();
enter("report");
if (process.env.HEAP_SNAPSHOT_DIR) {
  await sleep(Number(process.env.REPORT_SNAPSHOT_MS ?? 1500));
  if (!summary) v8.writeHeapSnapshot(join(process.env.HEAP_SNAPSHOT_DIR, `report-${N}.heapsnapshot`));
}
await until(() => summary || failure, 10);
const tReturned = nowMs();
const cpuRep = process.cpuUsage(cpuRep0);
enter("after");
console.log(`  after the run: ${fds()} fds; ${kinds(smapsKinds())}`);
if (failure) throw failure;
const bad = orch.manifest.devices.filter((x) => x.status !== "collected");
const notCollected = bad.length ? `${bad.length}, e.g. ${bad[0].device}: ${bad[0].description}` : 0;
const cpu = process.cpuUsage(cpu0);
const ms = (c) => (c.user + c.system) / 1000;
const line = (name, s) =>
  `  ${name.padEnd(13)} rss ${f1(s.rss)} = heapTotal ${f1(s.heapTotal)} (used ${f1(s.heapUsed)}; new ${f1(s.newSpace)}, old ${f1(s.oldSpace)}, code ${f1(s.codeSpace)}, large ${f1(s.largeObject)}) + external ${f1(s.external)} (array buffers ${f1(s.arrayBuffers)}) + native ${f1(s.native)}; anon ${f1(s.rssAnon)} file ${f1(s.rssFile)} MB`;
console.log(`rss-phases ${LABEL} ${N} devices, concurrency ${CONCURRENCY}; node ${process.execArgv.join(" ")}; MALLOC_ARENA_MAX=${process.env.MALLOC_ARENA_MAX ?? "-"}; not collected ${notCollected}`);
for (const [name, p] of phases) console.log(line(name, p.atPeak));
const gcByPhase = {};
for (const [k, g] of gcMs) {
  const [ph, kind] = k.split("\t");
  (gcByPhase[ph] ??= {})[kind] = g;
}
for (const ph of ["start", "capturing", "stop+collect", "report"]) {
  const g = gcByPhase[ph] ?? {};
  console.log(`  GC in ${ph}: ${Object.entries(g).map(([kind, x]) => `${kind} ${x.n}× ${f1(x.ms)} ms`).join(", ") || "none"}`);
}
if (globalThis.__rssBufferReport) console.log(globalThis.__rssBufferReport(Number(process.env.BUFFER_TOP ?? 12)));
if (live) console.log(line("live@capt", live));
console.log(
  `  times: capturing ${f1((tCapturing - t0) / 1000)} s, stop+collect ${f1((tCollected - tCapturing) / 1000)} s, report ${f1((tReturned - tCollected) / 1000)} s; CPU ms/device: start ${f1(ms(cpuStart) / N)}, stop+collect ${f1(ms(cpuStop) / N)}, report ${f1(ms(cpuRep) / N)}, all ${f1(ms(cpu) / N)}; load ${loadAvg()}`,
);
const out = { gc: gcByPhase, label: LABEL, devices: N, execArgv: process.execArgv, arenaMax: process.env.MALLOC_ARENA_MAX ?? null, phases: Object.fromEntries(phases), live, cpuMsPerDevice: { start: ms(cpuStart) / N, stopCollect: ms(cpuStop) / N, report: ms(cpuRep) / N, all: ms(cpu) / N }, load: loadAvg() };
if (process.env.RESULT_FILE) writeFileSync(process.env.RESULT_FILE, JSON.stringify(out) + "\n", { flag: "a" });
await Promise.all([fleet.close(), ...agents.map((a) => a.close())]);
process.exit(0);

#!/usr/bin/env node
// `npm run bench`: the five issue-10 benchmarks one after another (never side by side: each one's
// ratio is measured within its own run, and two at once would measure each other), each as its own
// process with its own time bound, then one table of figures and targets. Exit 1 if a benchmark
// failed to produce its result (a missed target is reported, not an error: BENCHMARKS.md says why).
// Options: BENCH_ONLY=fanout,collect runs a subset; BENCH_EXTRA=1 adds merge and upload.
// Bounded: at most the sum of the per-benchmark limits below (~10 min for the five).
import { spawn } from "node:child_process";
import { join } from "node:path";
import { ROOT, f1, f2, machine } from "./lib/common.mjs";

/** name, script, extra env, hard limit (s). Env sizes are the issue's (1000 devices, 100 × 50 MB, ...). */
const ALL = [
  { name: "agent-start", script: "agent-start.mjs", env: { ROUNDS: "30", SESSIONS: "200" }, limitS: 120 },
  { name: "alarm-to-stop", script: "alarm-to-stop.mjs", env: { DEVICES: "1000", SPREAD_MS: "50" }, limitS: 240 },
  { name: "fanout", script: "fanout.mjs", env: { DEVICES: "1000", SERIAL_N: "20", LATENCY_MS: "50" }, limitS: 200 },
  { name: "syslog-ingest", script: "syslog-ingest.mjs", env: {}, limitS: 150 },
  { name: "collect", script: "collect.mjs", env: { FILES: "100", SIZE_MB: "50" }, limitS: 200 },
  { name: "merge", script: "merge.mjs", env: {}, limitS: 200, extra: true },
  { name: "upload", script: "upload.mjs", env: {}, limitS: 200, extra: true },
];
const only = process.env.BENCH_ONLY?.split(",").filter(Boolean);
const runs = ALL.filter((b) => (only ? only.includes(b.name) : !b.extra || process.env.BENCH_EXTRA));

function runOne(b) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    // The script's own guard is BUDGET_S; ours is a little later and kills the whole group.
    const p = spawn(process.execPath, [join(ROOT, "bench", b.script)], { env: { ...process.env, BUDGET_S: String(b.limitS - 10), ...b.env }, stdio: ["ignore", "pipe", "inherit"], detached: true });
    const kill = setTimeout(() => {
      console.error(`${b.name}: past ${b.limitS} s, killed`);
      try {
        process.kill(-p.pid, "SIGKILL");
      } catch {
        /* gone */
      }
    }, b.limitS * 1000);
    let buf = "";
    let res;
    p.stdout.on("data", (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line.startsWith("RESULT ")) res = JSON.parse(line.slice(7));
        else console.log(`  ${line}`);
      }
    });
    p.once("exit", (code) => {
      clearTimeout(kill);
      resolve({ ...b, code, res, s: (performance.now() - t0) / 1000 });
    });
  });
}

const m = machine();
console.log(`capsync benchmarks on ${m.cpus} × ${m.cpuModel}, ${m.ramGiB} GiB, Linux ${m.kernel}, Node ${m.node}, ${m.tcpdump}; load ${m.load}`);
const done = [];
const t0 = performance.now();
for (const b of runs) {
  console.log(`\n== ${b.name} (${b.script}, at most ${b.limitS} s)`);
  const r = await runOne(b);
  console.log(`== ${b.name}: exit ${r.code} after ${f1(r.s)} s`);
  done.push(r);
}

/** One table row per figure: what, measured, target, met? */
function rows(r) {
  const x = r.res;
  if (!x) return [[r.name, `no result (exit ${r.code})`, "", "✗"]];
  const ok = (b) => (b ? "✓" : "✗");
  switch (r.name) {
    case "agent-start":
      return [
        ["agent start: CAPTURE→200 / bare tcpdump→listening (medians)", `${f1(x.agentMedianMs)} / ${f1(x.bareMedianMs)} ms = ${f2(x.ratio)}`, "≤ 1.2", ok(x.ratio <= 1.2)],
        [`agent: ${x.sessions} concurrent sessions`, `${x.sessionsOk}/${x.sessions} OK, last after ${f1(x.allUpMs)} ms; agent ${f2(x.agentCpuStartS)} CPU s to start them, ${f1(x.agentPeakRssMb)} MB peak RSS; ${x.tcpdumps} tcpdumps ${f1(x.tcpdumpRssMb)} MB RSS; ${x.stopsOk} STOPs OK`, "all OK", ok(x.sessionsOk === x.sessions && x.stopsOk === x.sessions)],
      ];
    case "alarm-to-stop":
      return [
        [`alarm→STOP datagram, ${x.devices} devices, spread`, `p50 ${f2(x.spread.agentStop.p50)} / p99 ${f2(x.spread.agentStop.p99)} / max ${f2(x.spread.agentStop.max)} ms`, "p99 ≤ 20 ms", ok(x.spread.agentStop.p99 <= 20)],
        [`alarm→device stop request, spread`, `p50 ${f2(x.spread.deviceStop.p50)} / p99 ${f2(x.spread.deviceStop.p99)} / max ${f2(x.spread.deviceStop.max)} ms`, "(reported)", ""],
        [`alarm→STOP datagram, ${x.devices} devices, burst`, `p50 ${f1(x.burst.agentStop.p50)} / p99 ${f1(x.burst.agentStop.p99)} / max ${f1(x.burst.agentStop.max)} ms`, "(reported)", ""],
        [`alarm→device stop request, burst`, `p50 ${f1(x.burst.deviceStop.p50)} / p99 ${f1(x.burst.deviceStop.p99)} / max ${f1(x.burst.deviceStop.max)} ms`, "(reported)", ""],
      ];
    case "fanout":
      return [
        [`fan-out ${x.devices} devices, start+stop+collect`, `${f2(x.wallS)} s vs serial ≈ ${f1(x.serialS)} s = ${f1(x.vsSerial)}×`, "≥ 50×", ok(x.vsSerial >= 50)],
        ["fan-out vs concurrency bound", `${f2(x.wallS)} / ${f2(x.boundS)} s = ${f2(x.vsBound)}×`, "≤ 2×", ok(x.vsBound <= 2)],
        ["fan-out orchestrator peak RSS", `${f1(x.rssMb)} MB`, "< 300 MB", ok(x.rssMb < 300)],
      ];
    case "syslog-ingest":
      return [
        ["syslog ingest, zero-drop rate capsync / rsyslog imudp", `${x.best.ours} / ${x.best.rsyslog} msg/s = ${f1(x.ratio * 100)} %${x.senderLimited?.length ? ` (sender-limited: ${x.senderLimited.join(", ")})` : ""}`, "≥ 50 %", ok(x.ratio >= 0.5)],
        ["syslog ingest drops at 20,000 msg/s", `${x.oursDropsAt20k}`, "0", ok(x.oursDropsAt20k === 0)],
      ];
    case "collect":
      return [[`collect ${x.files} × ${f1(x.sizeMB)} MB over SFTP, capsync / OpenSSH sftp`, `${f1(x.oursMBs)} / ${f1(x.opensshMBs)} MB/s = ${f2(x.ratio)}`, "(ratio)", ""]];
    default:
      return [[r.name, JSON.stringify(x), "", ""]];
  }
}

console.log(`\n## Results (${f1((performance.now() - t0) / 1000)} s in all)\n`);
console.log("| benchmark | measured | target | met |");
console.log("|---|---|---|---|");
for (const r of done) for (const row of rows(r)) console.log(`| ${row.join(" | ")} |`);
process.exit(done.every((r) => r.res) ? 0 : 1);

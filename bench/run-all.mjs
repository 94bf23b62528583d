#!/usr/bin/env node
// `npm run bench`: the five issue-10 benchmarks one after another (never side by side: each one's
// ratio is measured within its own run, and two at once would measure each other), each as its own
// process with its own time bound, then one table of figures and targets. Exit 1 if a benchmark
// failed to produce its result (a missed target is reported, not an error: BENCHMARKS.md says why).
// The fan-out measures its floor (bench/floor.mjs: the same protocol work by bare Node) in its own
// run; its rows carry the floor and the ratio to it in the "floor" column.
// Options: BENCH_ONLY=fanout,collect runs a subset (floor alone: BENCH_ONLY=floor);
// BENCH_EXTRA=1 adds every extra (merge, upload, and the issue-18/19 ones whose scripts exist:
// agent-fleet, agent-cycles, soak — long: 30 min each for the last two), BENCH_EXTRA=soak,merge only
// those; BENCH_FLEET=10000 runs the fan-out with 10,000 devices (default 1000; limit 30 min).
// Bounded: at most the sum of the per-benchmark limits below (~19 min for the five by default).
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { ROOT, f1, f2, machine } from "./lib/common.mjs";

const FLEET = Number(process.env.BENCH_FLEET ?? 1000);
if (!Number.isInteger(FLEET) || FLEET < 1 || FLEET > 20000) {
  console.error(`BENCH_FLEET must be an integer 1..20000, got '${process.env.BENCH_FLEET}'`);
  process.exit(2);
}
/** Fan-out time limit: ~6 min at 1000 devices (floor + serial + fan-out on a loaded machine), ~30 min at 10,000. */
const fanoutLimitS = Math.max(400, Math.round(400 + FLEET * 0.14));

/**
 * name, script, extra env, hard limit (s). Env sizes are the issue's (1000 devices, 100 × 50 MB, ...).
 * `optional`: written by other work; run only when the script exists.
 */
const ALL = [
  { name: "agent-start", script: "agent-start.mjs", env: { ROUNDS: "30", SESSIONS: "200" }, limitS: 120 },
  { name: "alarm-to-stop", script: "alarm-to-stop.mjs", env: { DEVICES: "1000", SPREAD_MS: "50" }, limitS: 240 },
  // Above 2000 devices: the fleet in several processes (fanout.mjs), 4 agents in their shared capture mode.
  { name: "fanout", script: "fanout.mjs", env: { DEVICES: String(FLEET), SERIAL_N: "20", FLOOR_N: String(Math.min(FLEET, 1000)), LATENCY_MS: "50", ...(FLEET > 2000 ? { AGENTS: "4", AGENT_MODE: "shared" } : {}) }, limitS: fanoutLimitS },
  { name: "syslog-ingest", script: "syslog-ingest.mjs", env: {}, limitS: 150 },
  { name: "collect", script: "collect.mjs", env: { FILES: "100", SIZE_MB: "50" }, limitS: 200 },
  { name: "merge", script: "merge.mjs", env: {}, limitS: 200, extra: true },
  { name: "upload", script: "upload.mjs", env: {}, limitS: 200, extra: true },
  // Alone only (BENCH_ONLY / BENCH_EXTRA=floor): the fan-out measures it in its own run anyway.
  { name: "floor", script: "floor.mjs", env: { DEVICES: "1000", LATENCY_MS: "50" }, limitS: 300, extra: true, alone: true },
  { name: "agent-fleet", script: "agent-fleet.mjs", env: {}, limitS: 1200, extra: true, optional: true },
  { name: "agent-cycles", script: "agent-cycles.mjs", env: {}, limitS: 1900, extra: true, optional: true },
  { name: "soak", script: "soak.mjs", env: {}, limitS: 3100, extra: true, optional: true },
].filter((b) => !b.optional || existsSync(join(ROOT, "bench", b.script)));
const list = (v) => v?.split(",").map((x) => x.trim()).filter(Boolean);
const only = list(process.env.BENCH_ONLY);
const extra = process.env.BENCH_EXTRA === "1" ? ALL.filter((b) => b.extra && !b.alone).map((b) => b.name) : (list(process.env.BENCH_EXTRA) ?? []);
for (const name of [...(only ?? []), ...extra]) {
  if (!ALL.some((b) => b.name === name)) {
    console.error(`no benchmark '${name}' (there are: ${ALL.map((b) => b.name).join(", ")})`);
    process.exit(2);
  }
}
const runs = ALL.filter((b) => (only ? only.includes(b.name) : !b.extra || extra.includes(b.name)));

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

/** One table row per figure: what, measured, [floor,] target, met? */
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
    case "fanout": {
      // Fan-out rows carry a fifth cell: the floor (bench/floor.mjs, same run) and the ratio to it.
      const fl = x.floor?.perDeviceMs;
      const floorCell = fl
        ? `${f2(fl.total)} ms/device (TLS+REST ${f2(fl.rest)}, SSH+SFTP ${f2(fl.deviceSftp)}, UDP ${f2(fl.udp)}, agent SFTP ${f2(fl.agentSftp)}; ${x.floor.devices} devices) → ${f2(x.floorRatio)}×`
        : "(not measured)";
      const once = x.collectedOnce;
      return [
        [`fan-out ${x.devices} devices, start+stop+collect`, `${f2(x.wallS)} s vs serial ≈ ${f1(x.serialS)} s = ${f1(x.vsSerial)}×`, "", "≥ 50×", ok(x.vsSerial >= 50)],
        ["fan-out vs concurrency bound", `${f2(x.wallS)} / ${f2(x.boundS)} s = ${f2(x.vsBound)}×`, "", "≤ 2×", ok(x.vsBound <= 2)],
        ["fan-out orchestrator CPU per device (ratio to the floor)", `${f2(x.orchCpuMsPerDevice)} ms (${f1(x.orchCpuS)} s in all; load ${x.load})`, floorCell, "≤ 1.5× floor", fl ? ok(x.floorRatio <= 1.5) : "✗"],
        ["fan-out orchestrator peak RSS (start / stop+collect / report)", `${f1(x.rssMb)} MB (${f1(x.rssPhasesMb.start)} / ${f1(x.rssPhasesMb.stop)} / ${f1(x.rssPhasesMb.report)})`, "", x.devices > 2000 ? "≤ 1 GB" : "≤ 200 MB", ok(x.rssMb <= (x.devices > 2000 ? 1024 : 200))],
        ["fan-out: every capture collected exactly once", once ? `${once.captureFiles} files in the run folder, ${once.manifestFiles} in the manifest, ${once.expected} expected` : "(not checked)", "", "all, once", ok(once?.ok)],
      ];
    }
    case "floor": {
      const fl = x.perDeviceMs;
      return [[`floor alone, ${x.devices} devices`, "", `${f2(fl.total)} ms/device (TLS+REST ${f2(fl.rest)}, SSH+SFTP ${f2(fl.deviceSftp)}, UDP ${f2(fl.udp)}, agent SFTP ${f2(fl.agentSftp)}; load ${x.load})`, "(reference)", ""]];
    }
    case "syslog-ingest":
      return [
        ["syslog ingest, zero-drop rate capsync / rsyslog imudp", `${x.best.ours} / ${x.best.rsyslog} msg/s = ${f1(x.ratio * 100)} %${x.senderLimited?.length ? ` (sender-limited: ${x.senderLimited.join(", ")})` : ""}`, "≥ 80 %", ok(x.ratio >= 0.8)],
        ["syslog ingest drops at 20,000 msg/s", `${x.oursDropsAt20k}`, "0", ok(x.oursDropsAt20k === 0)],
      ];
    case "collect":
      return [[`collect ${x.files} × ${f1(x.sizeMB)} MB over SFTP, capsync / OpenSSH sftp`, `${f1(x.oursMBs)} / ${f1(x.opensshMBs)} MB/s = ${f2(x.ratio)}`, "(ratio)", ""]];
    default:
      // Benchmarks written elsewhere (agent-fleet, agent-cycles, soak) judge themselves: `met`.
      return [[r.name, JSON.stringify(x, (k, v) => (["series", "machine", "samples", "fdKinds"].includes(k) ? undefined : v)).slice(0, 300), "", "(its own)", "met" in x ? ok(x.met) : ""]];
  }
}

console.log(`\n## Results (${f1((performance.now() - t0) / 1000)} s in all)\n`);
console.log("| benchmark | measured | floor | target | met |");
console.log("|---|---|---|---|---|");
// Rows without a floor (every benchmark but the fan-out) get an empty floor cell.
for (const r of done) for (const row of rows(r)) console.log(`| ${(row.length === 4 ? [row[0], row[1], "", row[2], row[3]] : row).join(" | ")} |`);
process.exit(done.every((r) => r.res) ? 0 : 1);

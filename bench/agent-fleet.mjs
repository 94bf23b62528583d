#!/usr/bin/env node
// One agent, a fleet of devices (issue 18 item 6): CAPTURE for N devices at once on one real
// server-capture agent, traffic to every device for TRAFFIC_S seconds (PPS datagrams per second
// each), then a STOP for every device. Measured per (capture mode, N): the agent's CPU and RSS while
// capturing, its tcpdumps' count, RSS and CPU, kernel drops (tcpdump's own counts, from the agent's
// log) and packets missing from the device files (datagrams sent vs the STOP answers' packets=),
// CAPTURE-all and STOP-all times. --capture-mode shared (one tcpdump) side by side with per-device
// (N tcpdumps) where N tcpdumps still fit in memory (estimated from the smaller runs).
// The devices are addresses routed through a veth into a network namespace the benchmark creates
// and removes (no other traffic on it); the agent captures on the veth. Needs root.
// Usage: npm run build && node bench/agent-fleet.mjs   (SIZES=100,1000,5000 TRAFFIC_S=10 PPS=2 MODES=shared,per-device)
// As a module: `runAgentFleet(options)` returns the result object (the RESULT line's).
import { execFileSync } from "node:child_process";
import { createSocket } from "node:dgram";
import { readFileSync } from "node:fs";
import { freemem } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { formatRequest, newRequestId, parseAnswer } from "@capsync/protocol";
import { BENCH_KEY, f1, guard, loadAvg, machine, result, sleep, startAgent, tempDir, writeKey } from "./lib/common.mjs";

export const FLEET_DEFAULTS = { sizes: [100, 1000, 5000], modes: ["shared", "per-device"], trafficS: 10, pps: 2, budgetS: 900 };
const NS = "csync-fleet";
const HOST_IF = "csfleeth";
const NS_IF = "csfleetn";
const HOST_ADDR = "198.18.79.1";
const NS_ADDR = "198.18.79.2";
/** Devices: 10.79.0.1 upwards, routed via the namespace (which drops them: no address, no forwarding). */
/** A request's bound: a fleet's CAPTUREs or STOPs queue behind each other's state-file writes. */
const DEADLINE_MS = 300_000;
const device = (i) => `10.79.${(i + 1) >> 8}.${(i + 1) & 255}`;

function ip(...args) {
  execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] });
}
function removeNet() {
  try {
    ip("netns", "del", NS);
  } catch {
    /* not there */
  }
  try {
    ip("link", "del", HOST_IF);
  } catch {
    /* gone with the namespace */
  }
}
function createNet() {
  removeNet();
  ip("netns", "add", NS);
  ip("link", "add", HOST_IF, "type", "veth", "peer", "name", NS_IF);
  ip("link", "set", NS_IF, "netns", NS);
  ip("addr", "add", `${HOST_ADDR}/24`, "dev", HOST_IF);
  ip("link", "set", HOST_IF, "up");
  ip("-n", NS, "addr", "add", `${NS_ADDR}/24`, "dev", NS_IF);
  ip("-n", NS, "link", "set", NS_IF, "up");
  ip("route", "add", "10.79.0.0/16", "via", NS_ADDR, "dev", HOST_IF);
  execFileSync("ping", ["-c", "1", "-W", "2", NS_ADDR], { stdio: "ignore" });
}

/** Process stats from /proc: CPU seconds (user+sys) and RSS MB. */
function proc(pid) {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = st.slice(st.lastIndexOf(")") + 2).split(" ");
    const rss = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return { cpu: (Number(f[11]) + Number(f[12])) / 100, rss: rss ? Number(rss[1]) / 1024 : 0 };
  } catch {
    return { cpu: 0, rss: 0 };
  }
}
function tcpdumpsOf(pid) {
  const r = execFileSync("pgrep", ["-P", String(pid), "-x", "tcpdump"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).toString();
  return r.split("\n").filter(Boolean).map(Number);
}
function safeTcpdumpsOf(pid) {
  try {
    return tcpdumpsOf(pid);
  } catch {
    return [];
  }
}
const sum = (pids, k) => pids.reduce((n, p) => n + proc(p)[k], 0);

/**
 * CSYNC/1 requests, `width` in flight, each answer parsed once; resent every 2 s until answered
 * (UDP), each bounded by DEADLINE_MS. Answers carry `ms`, the request's latency.
 */
async function requests(port, reqs, width = 200) {
  const key = Buffer.from(BENCH_KEY);
  const s = createSocket({ type: "udp4", recvBufferSize: 8 << 20 });
  await new Promise((r) => s.bind(0, "127.0.0.1", r));
  const waiting = new Map();
  s.on("message", (m) => {
    const a = parseAnswer(m, [key]);
    if (a.ok && a.value.code !== 100) waiting.get(a.value.id)?.(a.value);
  });
  const out = new Array(reqs.length);
  let next = 0;
  const lane = async () => {
    while (next < reqs.length) {
      const i = next++;
      const id = newRequestId();
      const dg = formatRequest({ id, ts: Date.now(), ...reqs[i] }, key);
      const t0 = performance.now();
      out[i] = await new Promise((res, rej) => {
        const resend = setInterval(() => s.send(dg, port, "127.0.0.1"), 2000);
        const give = setTimeout(() => {
          clearInterval(resend);
          rej(new Error(`${reqs[i].verb} ${reqs[i].device}: no answer in ${DEADLINE_MS / 1000} s`));
        }, DEADLINE_MS);
        waiting.set(id, (a) => {
          clearInterval(resend);
          clearTimeout(give);
          waiting.delete(id);
          res({ ...a, ms: performance.now() - t0 });
        });
        s.send(dg, port, "127.0.0.1");
      });
    }
  };
  await Promise.all(Array.from({ length: width }, lane));
  s.close();
  return out;
}

/** `pps` datagrams per second to each of `n` devices for `seconds`, round robin; the count sent to each. */
async function traffic(n, pps, seconds, onTick) {
  const s = createSocket("udp4");
  await new Promise((r) => s.bind(0, HOST_ADDR, r));
  const sent = new Uint32Array(n);
  const payload = Buffer.alloc(120, 0x2e);
  const tickMs = 20;
  let total = 0;
  let at = 0;
  const t0 = performance.now();
  for (let tick = 0; performance.now() - t0 < seconds * 1000; tick++) {
    // By the clock, not by ticks: a late tick (a loaded machine) sends what the rate owes.
    const due = Math.min(n * pps * seconds, Math.floor(((performance.now() - t0) / 1000) * n * pps));
    // At most a tick's worth at once (a stalled generator would otherwise send one burst of thousands).
    for (const end = Math.min(due, total + Math.ceil((n * pps * tickMs) / 1000)); total < end; total++) {
      payload.write(`seq=${sent[at]};`, 0);
      s.send(payload, 9, device(at));
      sent[at]++;
      at = (at + 1) % n;
    }
    onTick?.(tick);
    const wait = t0 + (tick + 1) * tickMs - performance.now();
    if (wait > 0) await sleep(wait);
  }
  await sleep(50);
  s.close();
  return sent;
}

/** One agent in `mode` with `n` devices: the figures of one table row. */
async function one(mode, n, o) {
  const dir = tempDir(`fleet-${mode}-${n}`);
  const log = join(dir, "agent.log");
  const agent = await startAgent({ dir: join(dir, "agent"), keyFile: writeKey(dir), maxSessions: n + 10, iface: HOST_IF, extra: ["--capture-mode", mode, "--min-free-disk", "0", "--log-file", log] });
  try {
    const base = proc(agent.pid);
    const devs = Array.from({ length: n }, (_, i) => device(i));
    const t0 = performance.now();
    const caps = await requests(agent.port, devs.map((d) => ({ verb: "CAPTURE", device: d })));
    const captureS = (performance.now() - t0) / 1000;
    const capOk = caps.filter((a) => a.code === 200).length;
    await sleep(500);
    const tds0 = safeTcpdumpsOf(agent.pid);
    const a0 = proc(agent.pid);
    const td0 = sum(tds0, "cpu");
    let rssMax = a0.rss;
    let tdRssMax = 0;
    // /proc reads only while sending (a pgrep per sample would stall the generator).
    const sent = await traffic(n, o.pps, o.trafficS, (tick) => {
      if (tick % 25) return;
      rssMax = Math.max(rssMax, proc(agent.pid).rss);
      tdRssMax = Math.max(tdRssMax, sum(tds0, "rss"));
    });
    const a1 = proc(agent.pid);
    const tds1 = safeTcpdumpsOf(agent.pid);
    const td1 = sum(tds1, "cpu");
    const t1 = performance.now();
    const stops = await requests(agent.port, devs.map((d, i) => ({ verb: "STOP", device: d, filename: `CPE_device_${d}_2026-12-06T04.00.00.${String(i).padStart(6, "0")}.pcap` })));
    const stopS = (performance.now() - t1) / 1000;
    const lat = (as) => {
      const v = as.map((a) => a.ms).sort((x, y) => x - y);
      return { p50: v[Math.floor(v.length / 2)], p99: v[Math.min(v.length - 1, Math.ceil(v.length * 0.99) - 1)] };
    };
    const stopOk = stops.filter((a) => a.code === 200).length;
    let missing = 0;
    let extra = 0;
    stops.forEach((a, i) => {
      const got = Number(a.details?.packets ?? 0);
      if (got < sent[i]) missing += sent[i] - got;
      else extra += got - sent[i];
    });
    await agent.close();
    const text = readFileSync(log, "utf8");
    const drops = [...text.matchAll(/(\d+) (?:packet\(s\) )?dropped by kernel/g)].reduce((k, m) => k + Number(m[1]), 0);
    const totalSent = sent.reduce((a, b) => a + b, 0);
    return {
      mode,
      devices: n,
      captureOk: capOk,
      captureS,
      captureMs: lat(caps),
      stopOk,
      stopS,
      stopMs: lat(stops),
      agentCpuPct: ((a1.cpu - a0.cpu) / o.trafficS) * 100,
      agentRssMb: rssMax,
      agentRssBaseMb: base.rss,
      bytesPerDevice: ((rssMax - base.rss) * 1048576) / n,
      tcpdumps: Math.max(tds0.length, tds1.length),
      tcpdumpRssMb: tdRssMax,
      tcpdumpCpuPct: ((td1 - td0) / o.trafficS) * 100,
      sent: totalSent,
      pps: totalSent / o.trafficS,
      missing,
      extra,
      kernelDrops: drops,
      load: loadAvg(),
    };
  } finally {
    await agent.close();
  }
}

export async function runAgentFleet(options = {}) {
  const o = { ...FLEET_DEFAULTS, ...options };
  createNet();
  const rows = [];
  try {
    for (const n of o.sizes) {
      for (const mode of o.modes) {
        if (mode === "per-device") {
          // N tcpdumps "where that still fits": estimated from the largest per-device run so far.
          const prev = rows.filter((r) => r.mode === "per-device" && !r.skipped).at(-1);
          const perTcpdumpMb = prev ? prev.tcpdumpRssMb / prev.devices : 10;
          const needMb = perTcpdumpMb * n;
          if (needMb > (freemem() / 1048576) * 0.4) {
            rows.push({ mode, devices: n, skipped: `needs ~${Math.round(needMb)} MB for ${n} tcpdumps (${f1(perTcpdumpMb)} MB each), over 40 % of free memory` });
            continue;
          }
        }
        rows.push(await one(mode, n, o));
        o.onRow?.(rows.at(-1));
      }
    }
  } finally {
    removeNet();
  }
  return { bench: "agent-fleet", trafficS: o.trafficS, ppsPerDevice: o.pps, rows };
}

export function describeAgentFleet(r) {
  const head = "mode        devices  CAPTURE-all  agent CPU  agent RSS  B/device  tcpdumps  tcpdump RSS  tcpdump CPU  pps    kernel drops  missing  STOP-all (p99 each)  load";
  const lines = [head];
  for (const x of r.rows) {
    if (x.skipped) {
      lines.push(`${x.mode.padEnd(11)} ${String(x.devices).padStart(7)}  not run: ${x.skipped}`);
      continue;
    }
    lines.push(
      [
        x.mode.padEnd(11),
        String(x.devices).padStart(7),
        `${f1(x.captureS)} s`.padStart(11),
        `${f1(x.agentCpuPct)} %`.padStart(9),
        `${f1(x.agentRssMb)} MB`.padStart(9),
        String(Math.round(x.bytesPerDevice)).padStart(8),
        String(x.tcpdumps).padStart(8),
        `${f1(x.tcpdumpRssMb)} MB`.padStart(11),
        `${f1(x.tcpdumpCpuPct)} %`.padStart(11),
        String(Math.round(x.pps)).padStart(5),
        String(x.kernelDrops).padStart(12),
        String(x.missing).padStart(8),
        `${f1(x.stopS)} s (${f1(x.stopMs.p99 / 1000)} s)`.padStart(17),
        ` ${x.load}`,
      ].join("  "),
    );
    if (x.captureOk !== x.devices || x.stopOk !== x.devices) lines.push(`  ! ${x.mode} ${x.devices}: ${x.captureOk} CAPTURE and ${x.stopOk} STOP answered 200`);
  }
  return lines;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const env = process.env;
  const list = (k, d) => (env[k] ? env[k].split(",").filter(Boolean) : d);
  const opts = {
    sizes: list("SIZES", FLEET_DEFAULTS.sizes).map(Number),
    modes: list("MODES", FLEET_DEFAULTS.modes),
    trafficS: Number(env.TRAFFIC_S ?? FLEET_DEFAULTS.trafficS),
    pps: Number(env.PPS ?? FLEET_DEFAULTS.pps),
    budgetS: Number(env.BUDGET_S ?? FLEET_DEFAULTS.budgetS),
  };
  if (opts.sizes.some((n) => !Number.isInteger(n) || n < 1 || n > 60_000)) throw new Error("agent-fleet: SIZES are integers 1..60000");
  if (opts.modes.some((m) => m !== "shared" && m !== "per-device")) throw new Error("agent-fleet: MODES are shared and/or per-device");
  guard(opts.budgetS, "agent-fleet");
  const m = machine();
  console.log(`agent-fleet on ${m.cpus} × ${m.cpuModel}, ${m.tcpdump}; ${opts.trafficS} s of traffic at ${opts.pps} datagrams/s per device; load ${m.load}`);
  // Each row as it is measured (a long run shows its progress), then the whole table.
  const r = await runAgentFleet({ ...opts, onRow: (row) => console.log(`  ${describeAgentFleet({ rows: [row] }).at(-1)}`) });
  for (const l of describeAgentFleet(r)) console.log(l);
  result(r);
  const sh = r.rows.filter((x) => x.mode === "shared" && !x.skipped).at(-1);
  const pd = r.rows.filter((x) => x.mode === "per-device" && !x.skipped && x.devices === sh?.devices)[0];
  console.log(sh ? `agent-fleet: ${sh.devices} devices shared: agent ${f1(sh.agentRssMb)} MB + ${sh.tcpdumps} tcpdump ${f1(sh.tcpdumpRssMb)} MB, ${sh.missing} packets missing${pd ? `; per-device at ${pd.devices}: ${pd.tcpdumps} tcpdumps ${f1(pd.tcpdumpRssMb)} MB` : ""}` : "agent-fleet: no shared run");
}

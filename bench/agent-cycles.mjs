#!/usr/bin/env node
// Agent cycle soak (issue 19 item 8): CYCLES times CAPTURE → packets → STOP → SFTP download, over
// LANES devices at once (each lane one device address, one cycle after another), against one real
// server-capture agent (real tcpdump on lo, its read-only SFTP). Spoken as the orchestrator speaks:
// CSYNC/1 over UDP with @capsync/protocol (resent every 500 ms until a final answer), downloads
// with ssh2-sftp-client on one connection per lane, reconnected every RECONNECT_EVERY cycles (the
// orchestrator pools one per agent). Every downloaded capture must hold exactly the PACKETS
// datagrams sent to its device before the STOP (the agent's "last packets before STOP" guarantee).
// Every SAMPLE_S: the agent's RSS and open descriptors, its tcpdump children. After the warm-up (the
// first WARMUP of the cycles) RSS and fds must grow under 10 % (bench/lib/soak-sample.mjs). At the
// end: no tcpdump left (children of the agent, and any tcpdump working under its directory), and
// the cycle rate per tenth of the run (a per-cycle cost that grows with the files kept shows there).
// Loopback only; bounded by CYCLES and BUDGET_S.
// Usage: npm run build && node bench/agent-cycles.mjs   (CYCLES=10000 LANES=20 PACKETS=20; BURST=1: packets back to back; CAPTURE_MODE=shared|per-device)
// As a module: `runAgentCycles(options)` returns the result object (the RESULT line's).
import { createSocket } from "node:dgram";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import SftpClient from "ssh2-sftp-client";
import { formatRequest, newRequestId, parseAnswer } from "@capsync/protocol";
import { BENCH_KEY, f1, f2, guard, loadAvg, machine, procCpuSeconds, result, sleep, sshKeys, startAgent, stopChild, tempDir, writeKey } from "./lib/common.mjs";
import { childrenNamed, fdCount, fdKinds, flatness, processesUnder, rssMb } from "./lib/soak-sample.mjs";

export const CYCLES_DEFAULTS = { cycles: 10_000, lanes: 20, packets: 20, sampleS: 2, warmup: 0.2, reconnectEvery: 100, paceMs: 1, captureMode: undefined, firstOctet: 67, maxGrowth: 0.1, budgetS: 1800 };

/** Packet records in a classic pcap (either byte order); -1 when it is not one. */
export function pcapPackets(buf) {
  if (buf.length < 24) return -1;
  const magic = buf.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  const be = magic === 0xd4c3b2a1 || magic === 0x4d3cb2a1;
  if (!le && !be) return -1;
  let n = 0;
  for (let off = 24; off + 16 <= buf.length; n++) off += 16 + (le ? buf.readUInt32LE(off + 8) : buf.readUInt32BE(off + 8));
  return n;
}

/** The sequence numbers of this bench's datagrams ("capsync-cycle <cycle> <i>", at the end of each record) in a classic pcap. */
export function sequenceNumbers(buf, cycle) {
  const found = [];
  const magic = buf.length >= 24 ? buf.readUInt32LE(0) : 0;
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  const tail = new RegExp(`capsync-cycle ${cycle} (\\d+)$`);
  for (let off = 24; off + 16 <= buf.length; ) {
    const len = le ? buf.readUInt32LE(off + 8) : buf.readUInt32BE(off + 8);
    const m = tail.exec(buf.toString("latin1", off + 16, Math.min(buf.length, off + 16 + len)));
    if (m) found.push(Number(m[1]));
    off += 16 + len;
  }
  return found;
}

/** CSYNC/1 client: one socket, answers matched by request id, each request resent every 500 ms until final. */
async function csyncClient(port, key) {
  const sock = createSocket({ type: "udp4", recvBufferSize: 4 << 20 });
  await new Promise((r) => sock.bind(0, "127.0.0.1", r));
  const pending = new Map();
  sock.on("message", (m) => {
    const a = parseAnswer(m, [key]);
    if (a.ok && a.value.code !== 100) pending.get(a.value.id)?.(a.value);
  });
  const request = (verb, device, filename) => {
    const id = newRequestId();
    const datagram = formatRequest({ id, ts: Date.now(), verb, device, filename }, key);
    return new Promise((res, rej) => {
      const resend = setInterval(() => sock.send(datagram, port, "127.0.0.1"), 500);
      const give = setTimeout(() => {
        clearInterval(resend);
        pending.delete(id);
        rej(new Error(`${verb} ${device}: no final answer in 30 s`));
      }, 30_000);
      pending.set(id, (a) => {
        clearInterval(resend);
        clearTimeout(give);
        pending.delete(id);
        res(a);
      });
      sock.send(datagram, port, "127.0.0.1");
    });
  };
  return { request, close: () => sock.close() };
}

/** A UDP sink on the device's address (so the sent datagrams draw no ICMP) and a sender to it. */
async function laneTraffic(address) {
  const sink = createSocket("udp4");
  sink.on("message", () => {});
  await new Promise((r) => sink.bind(0, address, r));
  const out = createSocket("udp4");
  await new Promise((r) => out.bind(0, "127.0.0.1", r));
  const port = sink.address().port;
  return {
    /**
     * Paced (PACE_MS apart) by default: on lo, libpcap's ring holds only ~32 frames (64 KiB MTU,
     * snaplen 262144, 2 MiB buffer) and lo puts each packet in it twice, so a burst of more than
     * ~16 packets overflows it whenever tcpdump is slow to wake ("dropped by kernel"); BURST=1
     * sends them back to back to show that.
     */
    send: async (n, tag, paceMs) => {
      const one = (i) => new Promise((r, j) => out.send(Buffer.from(`capsync-cycle ${tag} ${i}`), port, address, (e) => (e ? j(e) : r())));
      if (!paceMs) return void (await Promise.all(Array.from({ length: n }, (_, i) => one(i))));
      for (let i = 0; i < n; i++) {
        await one(i);
        await sleep(paceMs);
      }
    },
    close: () => {
      sink.close();
      out.close();
    },
  };
}

/** The device capture name the orchestrator would send in STOP, unique per cycle. */
function captureName(address, cycle) {
  const t = new Date(Date.UTC(2026, 0, 1) + cycle * 1000).toISOString(); // 2026-01-01T00:00:00.000Z
  return `CPE_device_${address}_${t.slice(0, 19).replace(/:/g, ".")}.${String(cycle % 1e6).padStart(6, "0")}.pcap`;
}

export async function runAgentCycles(options = {}) {
  const o = { ...CYCLES_DEFAULTS, ...options };
  const dir = tempDir("agent-cycles");
  const keyFile = writeKey(dir);
  const ssh = sshKeys(dir);
  const agentDir = join(dir, "agent");
  const agent = await startAgent({ dir: agentDir, keyFile, maxSessions: o.lanes + 8, authorizedKeysFile: ssh.authorizedKeysFile, extra: o.captureMode ? ["--capture-mode", o.captureMode] : [] });
  const privateKey = readFileSync(ssh.privateKeyFile);
  const key = Buffer.from(BENCH_KEY);
  const csync = await csyncClient(agent.port, key);
  const lanes = Array.from({ length: o.lanes }, (_, i) => `127.0.${o.firstOctet}.${i + 1}`);
  const traffic = await Promise.all(lanes.map(laneTraffic));

  const s = { tS: [], cycles: [], rss: [], fds: [], tcpdumps: [], load: [], agentCpuS: [] };
  const failures = [];
  const packetMismatches = [];
  let done = 0;
  let next = 0;
  let downloadedBytes = 0;
  let files = 0;
  let reconnects = 0;
  const doneAt = [];
  const t0 = performance.now();
  const deadline = t0 + o.budgetS * 1000 * 0.9;
  const sample = () => {
    s.tS.push(+((performance.now() - t0) / 1000).toFixed(2));
    s.cycles.push(done);
    s.rss.push(+rssMb(agent.pid).toFixed(1));
    s.fds.push(fdCount(agent.pid));
    s.tcpdumps.push(childrenNamed(agent.pid, "tcpdump").length);
    s.load.push(Number(loadAvg().split(" ")[0]));
    s.agentCpuS.push(procCpuSeconds(agent.pid));
  };
  sample();
  const sampler = setInterval(sample, o.sampleS * 1000);
  let fdAtWarmup;

  const connect = async () => {
    const c = new SftpClient();
    await c.connect({ host: "127.0.0.1", port: agent.sftpPort, username: "capsync", privateKey, readyTimeout: 20_000, retries: 0 });
    return c;
  };
  async function lane(i) {
    const address = lanes[i];
    let sftp = await connect();
    let sinceConnect = 0;
    try {
      while (next < o.cycles && performance.now() < deadline) {
        const cycle = next++;
        try {
          const cap = await csync.request("CAPTURE", address);
          if (cap.code !== 200) throw new Error(`CAPTURE answered ${cap.code} ${JSON.stringify(cap.details)}`);
          await traffic[i].send(o.packets, cycle, o.paceMs);
          const name = captureName(address, cycle);
          const stop = await csync.request("STOP", address, name);
          if (stop.code !== 200) throw new Error(`STOP answered ${stop.code} ${JSON.stringify(stop.details)}`);
          const names = (stop.details.files ?? "").split(",").filter(Boolean);
          if (!names.length) throw new Error(`STOP named no file: ${JSON.stringify(stop.details)}`);
          if (sinceConnect >= o.reconnectEvery) {
            await sftp.end().catch(() => undefined);
            sftp = await connect();
            sinceConnect = 0;
            reconnects++;
          }
          sinceConnect++;
          let packets = 0;
          const seen = [];
          for (const n of names) {
            const buf = await sftp.get(`/${n}`);
            downloadedBytes += buf.length;
            files++;
            const p = pcapPackets(buf);
            if (p < 0) throw new Error(`${n}: not a pcap (${buf.length} bytes)`);
            packets += p;
            seen.push(...sequenceNumbers(buf, cycle));
          }
          if (packets !== o.packets) {
            const missing = Array.from({ length: o.packets }, (_, k) => k).filter((k) => !seen.includes(k));
            packetMismatches.push({ cycle, address, expected: o.packets, got: packets, files: names.length, missing, stopAnswer: stop.details });
          }
        } catch (e) {
          failures.push({ cycle, address, error: e.message });
          if (failures.length > Math.max(20, o.cycles / 100)) throw new Error(`too many failed cycles (${failures.length}), e.g. ${failures[0].error}`);
        }
        done++;
        doneAt.push(performance.now() - t0);
        if (!fdAtWarmup && done >= o.cycles * o.warmup) fdAtWarmup = fdKinds(agent.pid);
        if (done % 1000 === 0) console.log(`  ${done} cycles after ${f1((performance.now() - t0) / 1000)} s: agent ${rssMb(agent.pid).toFixed(1)} MB, ${fdCount(agent.pid)} fds, ${childrenNamed(agent.pid, "tcpdump").length} tcpdumps; load ${loadAvg()}`);
      }
    } finally {
      await sftp.end().catch(() => undefined);
    }
  }
  await Promise.all(lanes.map((_, i) => lane(i)));
  const wallS = (performance.now() - t0) / 1000;
  clearInterval(sampler);
  sample();
  const fdAtEnd = fdKinds(agent.pid);
  // Whatever a STOP left behind: tcpdumps still running (or unreaped) a moment after the last answer.
  await sleep(1000);
  const leftChildren = childrenNamed(agent.pid, "tcpdump").length;
  const leftUnder = processesUnder("tcpdump", agentDir).length;
  const rssEnd = rssMb(agent.pid);
  const fdEnd = fdCount(agent.pid);
  csync.close();
  for (const t of traffic) t.close();
  await stopChild(agent.proc);
  const leftAfterExit = processesUnder("tcpdump", agentDir).length;

  // The warm-up in time: when the WARMUP share of the cycles was done.
  const warmupS = (doneAt[Math.max(0, Math.ceil(o.cycles * o.warmup) - 1)] ?? 0) / 1000;
  const tenths = Array.from({ length: 10 }, (_, k) => {
    const a = Math.floor((doneAt.length * k) / 10);
    const b = Math.floor((doneAt.length * (k + 1)) / 10) - 1;
    const span = (doneAt[b] - (a > 0 ? doneAt[a - 1] : 0)) / 1000;
    return +((b - a + 1) / span).toFixed(1);
  });
  const res = {
    bench: "agent-cycles",
    cycles: done,
    requested: o.cycles,
    lanes: o.lanes,
    packets: o.packets,
    paceMs: o.paceMs,
    captureMode: o.captureMode ?? "(agent default)",
    wallS,
    cyclesPerS: done / wallS,
    cyclesPerSByTenth: tenths,
    // The agent's own CPU (user + system, tcpdumps not included) per cycle: a per-cycle cost that grows shows here whatever the load.
    agentCpuMsPerCycle: (1000 * (s.agentCpuS.at(-1) - s.agentCpuS[0])) / Math.max(1, done),
    agentCpuMsPerCycleByFifth: Array.from({ length: 5 }, (_, k) => {
      const a = Math.floor(((s.tS.length - 1) * k) / 5);
      const b = Math.floor(((s.tS.length - 1) * (k + 1)) / 5);
      return +((1000 * (s.agentCpuS[b] - s.agentCpuS[a])) / Math.max(1, s.cycles[b] - s.cycles[a])).toFixed(2);
    }),
    failures: failures.length,
    failureSamples: failures.slice(0, 5),
    packetMismatches: packetMismatches.length,
    mismatchSamples: packetMismatches.slice(0, 5),
    files,
    downloadedMb: downloadedBytes / 1e6,
    reconnects,
    warmupS,
    rss: { start: s.rss[0], atWarmup: s.rss[s.tS.findIndex((t) => t >= warmupS)], end: rssEnd, max: Math.max(...s.rss), flat: flatness(s.tS, s.rss, warmupS) },
    fds: { start: s.fds[0], atWarmup: s.fds[s.tS.findIndex((t) => t >= warmupS)], end: fdEnd, max: Math.max(...s.fds), flat: flatness(s.tS, s.fds, warmupS) },
    fdKinds: { atWarmup: fdAtWarmup, atEnd: fdAtEnd },
    maxTcpdumps: Math.max(...s.tcpdumps),
    tcpdumpsLeft: { agentChildren: leftChildren, underAgentDir: leftUnder, afterAgentExit: leftAfterExit },
    load: { min: Math.min(...s.load), max: Math.max(...s.load) },
    machine: machine(),
    series: s,
  };
  res.met = done === o.cycles && failures.length === 0 && packetMismatches.length === 0 && res.rss.flat.growth < o.maxGrowth && res.fds.flat.growth < o.maxGrowth && leftChildren === 0 && leftUnder === 0 && leftAfterExit === 0;
  return res;
}

export function describeCycles(r) {
  const g = (f) => `${f1(f.baseline)} → ${f1(f.end)} (${(f.growth * 100).toFixed(1)} %, peak +${(f.peakGrowth * 100).toFixed(1)} %, ${f2(f.slopePerHour)}/h)`;
  return [
    `${r.cycles}/${r.requested} cycles over ${r.lanes} devices in ${f1(r.wallS)} s = ${f1(r.cyclesPerS)} cycles/s (per tenth: ${r.cyclesPerSByTenth.join(", ")}); agent CPU ${f2(r.agentCpuMsPerCycle)} ms per cycle (per fifth: ${r.agentCpuMsPerCycleByFifth.join(", ")}); ${r.failures} failed, ${r.packetMismatches} with a packet count other than ${r.packets}; ${r.files} files, ${f1(r.downloadedMb)} MB downloaded, ${r.reconnects} SFTP reconnects`,
    `agent RSS start ${f1(r.rss.start)} MB, at warm-up end (${f1(r.warmupS)} s) ${f1(r.rss.atWarmup)}, end ${f1(r.rss.end)}, max ${f1(r.rss.max)}; after warm-up ${g(r.rss.flat)}`,
    `agent fds start ${r.fds.start}, at warm-up end ${r.fds.atWarmup}, end ${r.fds.end}, max ${r.fds.max}; after warm-up ${g(r.fds.flat)}`,
    `tcpdumps: at most ${r.maxTcpdumps} at once; left at the end: ${r.tcpdumpsLeft.agentChildren} children, ${r.tcpdumpsLeft.underAgentDir} under the agent dir, ${r.tcpdumpsLeft.afterAgentExit} after the agent exited; load ${r.load.min}–${r.load.max}`,
  ];
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const env = process.env;
  const num = (k, d) => (env[k] === undefined ? d : Number(env[k]));
  const opts = {
    cycles: num("CYCLES", CYCLES_DEFAULTS.cycles),
    lanes: num("LANES", CYCLES_DEFAULTS.lanes),
    packets: num("PACKETS", CYCLES_DEFAULTS.packets),
    sampleS: num("SAMPLE_S", CYCLES_DEFAULTS.sampleS),
    warmup: num("WARMUP", CYCLES_DEFAULTS.warmup),
    reconnectEvery: num("RECONNECT_EVERY", CYCLES_DEFAULTS.reconnectEvery),
    budgetS: num("BUDGET_S", CYCLES_DEFAULTS.budgetS),
  };
  const paceMs = env.BURST === "1" ? 0 : CYCLES_DEFAULTS.paceMs;
  for (const [k, v] of Object.entries(opts)) if (!(v > 0) || (k !== "warmup" && k !== "sampleS" && !Number.isInteger(v))) throw new Error(`agent-cycles: ${k} must be a positive integer, got ${v}`);
  if (opts.lanes > 250) throw new Error("agent-cycles: LANES at most 250 (one address each in 127.0.67.0/24)");
  guard(opts.budgetS, "agent-cycles");
  const r = await runAgentCycles({ ...opts, paceMs, captureMode: env.CAPTURE_MODE });
  for (const l of describeCycles(r)) console.log(l);
  const { series, ...summary } = r;
  if (env.SERIES_OUT) (await import("node:fs")).writeFileSync(env.SERIES_OUT, JSON.stringify(r, null, 1) + "\n");
  result(summary);
  console.log(`agent cycles: ${r.cycles} in ${f1(r.wallS)} s (${f1(r.cyclesPerS)}/s); agent RSS ${f1(r.rss.flat.growth * 100)} %, fds ${f1(r.fds.flat.growth * 100)} % after warm-up (target < 10 %); ${r.tcpdumpsLeft.agentChildren + r.tcpdumpsLeft.underAgentDir} tcpdumps left; ${r.met ? "met" : "NOT met"}`);
  process.exit(r.met ? 0 : 1);
}

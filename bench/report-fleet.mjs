#!/usr/bin/env node
// The end-of-run report at fleet scale: a run folder of DEVICES devices, each with its device
// capture (classic pcap, Ethernet, its own clock) and its agent's capture (classic pcap, Linux SLL2,
// the agent's clock) and a manifest naming them, then the report and merge of that folder exactly as
// `cpe-capture run` ends (reportRun): wall time, CPU, peak RSS of this process (sampled every 20 ms
// and process.resourceUsage().maxRSS) and the open file descriptors it peaked at.
// Traffic per device: one packet device→server every 20 ms and server→device every 30 ms for
// SECONDS, 5–15 ms one way, 1 % loss each way; device 1's path blacks out at 70 % of the run.
// Usage: npm run build && node bench/report-fleet.mjs   (DEVICES=1000 SECONDS=10; KEEP=1 keeps the
// folder; GEN_ONLY=1 only generates it, kept; FOLDER=<dir> reports an existing generated folder)
import { mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeSync, closeSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ethernetFrame, ipPacket, prng, sll2Frame } from "@capsync/pcap";
import { reportRun } from "@capsync/cpe-capture/artifacts/report";

const DEVICES = Number(process.env.DEVICES ?? 1000);
const SECONDS = Number(process.env.SECONDS ?? 10);
const AGENT = "127.0.0.1:4000";
const START = 1_790_000_000_000_000_000n;
const SERVER = "10.9.0.5";
const mb = (b) => (b / 1048576).toFixed(1);

/** Classic pcap, nanosecond magic: header, then 16-byte record headers and frames. */
class PcapFile {
  constructor(path, linktype) {
    this.fd = openSync(path, "w");
    this.parts = [];
    this.size = 0;
    const h = Buffer.alloc(24);
    h.writeUInt32LE(0xa1b23c4d, 0);
    h.writeUInt16LE(2, 4);
    h.writeUInt16LE(4, 6);
    h.writeUInt32LE(262144, 16);
    h.writeUInt32LE(linktype, 20);
    this.push(h);
  }
  push(b) {
    this.parts.push(b);
    this.size += b.length;
    if (this.size > 1 << 20) this.flush();
  }
  flush() {
    writeSync(this.fd, Buffer.concat(this.parts));
    this.parts = [];
    this.size = 0;
  }
  packet(ns, frame) {
    const r = Buffer.alloc(16);
    r.writeUInt32LE(Number(ns / 1_000_000_000n), 0);
    r.writeUInt32LE(Number(ns % 1_000_000_000n), 4);
    r.writeUInt32LE(frame.length, 8);
    r.writeUInt32LE(frame.length, 12);
    this.push(r);
    this.push(frame);
  }
  close() {
    this.flush();
    closeSync(this.fd);
  }
}

function generate(folder) {
  const rnd = prng(7);
  const devices = [];
  const endNs = START + BigInt(SECONDS) * 1_000_000_000n;
  let packets = 0;
  for (let i = 0; i < DEVICES; i++) {
    const addr = `10.1.${(i >> 8) & 255}.${i & 255}`;
    const devOffset = BigInt(((i % 7) - 3) * 100_000_000); // device clock minus the agent's
    const blackoutAt = i === 0 ? START + (BigInt(SECONDS) * 7n * 1_000_000_000n) / 10n : undefined;
    const dev = [];
    const srv = [];
    let id = 0;
    const send = (dir, t) => {
      const n = id++;
      const ip = ipPacket({ src: dir === 0 ? addr : SERVER, dst: dir === 0 ? SERVER : addr, protocol: n % 3 === 0 ? "udp" : "tcp", srcPort: dir === 0 ? 40001 : 443, dstPort: dir === 0 ? 443 : 40001, seq: n, ack: 1, ipId: n & 0xffff, payload: Buffer.from(`pkt-${n}-${"x".repeat(40)}`) });
      const lost = rnd() < 0.01 || (blackoutAt !== undefined && dir === 0 && t >= blackoutAt);
      const arrive = t + BigInt(Math.round(5e6 + rnd() * 10e6));
      if (dir === 0) {
        dev.push([t + devOffset, ethernetFrame(ip)]);
        if (!lost) srv.push([arrive, sll2Frame(ip)]);
      } else {
        srv.push([t, sll2Frame(ip)]);
        if (!lost) dev.push([arrive + devOffset, ethernetFrame(ip)]);
      }
    };
    for (let t = START + 1_000_000n; t < endNs; t += 20_000_000n) send(0, t + BigInt(i * 1000));
    for (let t = START + 1_500_000n; t < endNs; t += 30_000_000n) send(1, t + BigInt(i * 1000));
    const byTime = (x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0);
    const stamp = `2026-12-06T03.00.00.000000`;
    const devFile = `CPE_device_${addr}_${stamp}.pcap`;
    const srvFile = `OVOC_device_${addr}_${stamp}-0.pcap`;
    for (const [name, recs, lt] of [
      [devFile, dev, 1],
      [srvFile, srv, 276],
    ]) {
      const f = new PcapFile(join(folder, name), lt);
      for (const [t, fr] of recs.sort(byTime)) f.packet(t, fr);
      f.close();
      packets += recs.length;
    }
    const iso = (ns) => new Date(Number(ns / 1_000_000n)).toISOString();
    devices.push({
      device: addr,
      name: `msbr-${i}`,
      type: "msbr",
      state: "done",
      status: "collected",
      severity: "info",
      description: "",
      interfaces: [],
      events: 0,
      ...(i === 0 ? { stopReason: "alarm", stopEvent: { reason: "connection lost", receivedAt: iso(endNs - 500_000_000n) } } : { stopReason: "manual" }),
      tasks: [],
      times: { capturing: iso(START), stopped: iso(endNs + 200_000_000n), agentsStopSent: iso(endNs + 200_000_000n) },
      deviceFile: { name: devFile, bytes: statSync(join(folder, devFile)).size },
      agents: [{ agent: AGENT, registration: "active", capture: "collected", answers: [], files: [{ name: srvFile, bytes: statSync(join(folder, srvFile)).size }] }],
    });
  }
  const manifest = { version: 1, devices };
  const fd = openSync(join(folder, "manifest.json"), "w");
  writeSync(fd, JSON.stringify(manifest));
  closeSync(fd);
  return packets;
}

const fdCount = () => readdirSync("/proc/self/fd").length;
const folder = process.env.FOLDER ?? mkdtempSync(join(tmpdir(), "capsync-report-fleet-"));
try {
  if (!process.env.FOLDER) {
    const g0 = performance.now();
    const packets = generate(folder);
    console.log(`generated ${DEVICES} devices × 2 files, ${packets} packets in ${((performance.now() - g0) / 1000).toFixed(1)} s (${folder})`);
    if (process.env.GEN_ONLY) process.exit(0);
  }
  let peak = process.memoryUsage().rss;
  let peakHeap = 0;
  let peakAb = 0;
  let peakFds = fdCount();
  const base = peak;
  const timer = setInterval(() => {
    const m = process.memoryUsage();
    peak = Math.max(peak, m.rss);
    peakHeap = Math.max(peakHeap, m.heapUsed + m.external);
    peakAb = Math.max(peakAb, m.arrayBuffers);
    peakFds = Math.max(peakFds, fdCount());
  }, 20);
  globalThis.__rssPhase = "report+merge"; // bench/lib/rss-buffers.mjs tallies Buffers by phase
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await reportRun(folder);
  const wall = performance.now() - t0;
  clearInterval(timer);
  const cpu = process.cpuUsage(cpu0);
  const sizes = ["merged.pcapng", "report.txt", "report.json", "report.html"].map((f) => `${f} ${mb(statSync(join(folder, f)).size)} MB`).join(", ");
  const devices = JSON.parse(readFileSync(join(folder, "manifest.json"), "utf8")).devices.length;
  console.log(`report + merge of ${devices} device/server pairs: ${(wall / 1000).toFixed(2)} s wall, ${((cpu.user + cpu.system) / 1e6).toFixed(2)} CPU s`);
  console.log(`peak RSS ${mb(peak)} MB sampled (before ${mb(base)} MB; maxRSS ${mb(process.resourceUsage().maxRSS * 1024)} MB incl. generation), heap+external peak ${mb(peakHeap)} MB, array buffers peak ${mb(peakAb)} MB, fds peak ${peakFds}`);
  console.log(sizes);
  console.log(`summary: ${r?.summaryLine.slice(0, 400)}`);
  if (globalThis.__rssBufferReport) console.log(globalThis.__rssBufferReport(8));
  console.log(JSON.stringify({ bench: "report-fleet", devices, wallS: wall / 1000, cpuS: (cpu.user + cpu.system) / 1e6, peakRssMb: peak / 1048576, baseRssMb: base / 1048576, arrayBuffersPeakMb: peakAb / 1048576, fds: peakFds }));
} finally {
  if (!process.env.KEEP && !process.env.FOLDER) rmSync(folder, { recursive: true, force: true });
  else console.log(`folder kept: ${folder}`);
}

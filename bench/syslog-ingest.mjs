#!/usr/bin/env node
// Syslog ingest: how many messages per second capsync's listener takes in, parses and matches
// with zero drops, next to rsyslog's imudp (Debian rsyslogd, own config/pid/work dir, writing
// every message to a file in its traditional format) on the same machine, same run, same message
// mix (bench/lib/syslog-mix.mjs), same receive buffer (8 MiB as the kernel counts it).
// Each receiver runs in its own process; SENDERS sender processes (bench/lib/udp-blast.mjs, ~200k
// msg/s at most each here) send STEP_S seconds at each rate of a ladder, alternately to both, and a rate counts
// for a receiver only if every datagram was received and handled: capsync — listener counters
// (received, processed + prefilter-ignored, queue drops) and the kernel's drops on its port;
// rsyslog — lines in its file and the kernel's drops on its port. Loopback only; bounded by the
// ladder (at most RATES × STEP_S datagrams per receiver) and BUDGET_S.
// Usage: npm run build && node bench/syslog-ingest.mjs   (STEP_S=2, RATES=20000,40000,..., SENDERS=2)
import { spawn, spawnSync } from "node:child_process";
import { closeSync, mkdirSync, openSync, readSync, statSync, writeFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { join } from "node:path";
import { syslogMix } from "./lib/syslog-mix.mjs";
import { ROOT, f1, guard, loadAvg, procCpuSeconds, result, sleep, stopChild, tempDir, track } from "./lib/common.mjs";

const STEP_S = Number(process.env.STEP_S ?? 2);
const RATES = (process.env.RATES ?? "20000,40000,60000,80000,100000,120000,140000,160000,180000,200000,240000,280000,320000,400000").split(",").map(Number);
const BUDGET_S = Number(process.env.BUDGET_S ?? 150);
const SENDERS = Math.max(1, Number(process.env.SENDERS ?? 2));
const TARGET_RATE = 20_000;
guard(BUDGET_S, "syslog-ingest");
const RSYSLOGD = ["/usr/sbin/rsyslogd", "/sbin/rsyslogd"].find((p) => spawnSync(p, ["-v"]).status === 0);
if (!RSYSLOGD) {
  console.error("rsyslogd not found (Debian: apt-get install -y rsyslog)");
  process.exit(2);
}
const dir = tempDir("ingest");
// The senders read the mix from here (built once, the same bytes for both receivers).
const mixFile = join(dir, "mix.json");
writeFileSync(mixFile, JSON.stringify(syslogMix().map((b) => Buffer.from(b).toString("base64"))));

/** Kernel drops on a local UDP port (last column of /proc/net/udp). */
function kernelDrops(port) {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  let n = 0;
  for (const line of spawnSync("cat", ["/proc/net/udp"], { encoding: "utf8" }).stdout.split("\n").slice(1)) {
    const c = line.trim().split(/\s+/);
    if (c.length >= 13 && c[1].endsWith(hex)) n += Number(c[c.length - 1]);
  }
  return n;
}

/** SENDERS processes, each sending rate / SENDERS per second: one Node sender tops out near 200k/s. */
async function blast(port, rate) {
  const one = async (i) => {
    const args = [join(ROOT, "bench/lib/udp-blast.mjs"), String(port), String(rate / SENDERS), String(STEP_S), String(i), mixFile];
    const p = track(spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] }));
    let out = "";
    p.stdout.on("data", (c) => (out += c));
    await new Promise((r) => p.once("exit", r));
    return JSON.parse(out);
  };
  const all = await Promise.all(Array.from({ length: SENDERS }, (_, i) => one(i)));
  return { sent: all.reduce((n, r) => n + r.sent, 0), ms: Math.max(...all.map((r) => r.ms)) };
}

// --- capsync's listener ---------------------------------------------------------------------------
const ours = track(spawn(process.execPath, [join(ROOT, "bench/lib/listener-child.mjs")], { stdio: ["pipe", "pipe", "inherit"] }));
const oursLines = createInterface({ input: ours.stdout })[Symbol.asyncIterator]();
const oursPort = JSON.parse((await oursLines.next()).value).port;
async function oursReport() {
  ours.stdin.write("report\n");
  return JSON.parse((await oursLines.next()).value);
}

// --- rsyslog ----------------------------------------------------------------------------------------
const rsPort = await new Promise((res) => {
  // A free port: bind, read, close (rsyslog binds it right after).
  import("node:dgram").then(({ default: dgram }) => {
    const s = dgram.createSocket("udp4");
    s.bind(0, "127.0.0.1", () => {
      const p = s.address().port;
      s.close(() => res(p));
    });
  });
});
const outFile = join(dir, "rsyslog-out.log");
mkdirSync(join(dir, "work"));
writeFileSync(
  join(dir, "rsyslog.conf"),
  `# capsync ingest benchmark (no imuxsock/imklog: never touches the system's logs)
global(workDirectory="${dir}/work" net.enableDNS="off")
module(load="imudp")
input(type="imudp" address="127.0.0.1" port="${rsPort}" rcvbufSize="4m" ruleset="bench")
ruleset(name="bench") {
  action(type="omfile" file="${outFile}" template="RSYSLOG_TraditionalFileFormat")
}
`,
);
writeFileSync(outFile, "");
const rs = track(spawn(RSYSLOGD, ["-n", "-f", join(dir, "rsyslog.conf"), "-i", join(dir, "rsyslogd.pid")], { stdio: ["ignore", "inherit", "inherit"] }));
let rsOffset = 0;
let rsLines = 0;
/** Lines rsyslog has written so far (reads only what was appended since the last call). */
function rsCount() {
  const size = statSync(outFile).size;
  if (size <= rsOffset) return rsLines;
  const fd = openSync(outFile, "r");
  const buf = Buffer.alloc(1 << 20);
  while (rsOffset < size) {
    const n = readSync(fd, buf, 0, Math.min(buf.length, size - rsOffset), rsOffset);
    if (n <= 0) break;
    for (let i = 0; i < n; i++) if (buf[i] === 10) rsLines++;
    rsOffset += n;
  }
  closeSync(fd);
  return rsLines;
}
/** Waits until rsyslog's file stops growing for 500 ms (at most 10 s). */
async function rsSettled() {
  let last = -1;
  let stableSince = performance.now();
  const until = performance.now() + 10_000;
  for (;;) {
    const n = rsCount();
    if (n !== last) {
      last = n;
      stableSince = performance.now();
    } else if (performance.now() - stableSince > 500 || performance.now() > until) return n;
    await sleep(100);
  }
}
// Ready when a probe datagram comes out in the file.
{
  const { default: dgram } = await import("node:dgram");
  const probe = dgram.createSocket("udp4");
  probe.on("error", () => {});
  const until = Date.now() + 15_000;
  while (rsCount() === 0) {
    if (rs.exitCode !== null || Date.now() > until) throw new Error("rsyslogd did not start");
    probe.send(Buffer.from("<13>Nov 23 10:00:00 bench probe: ready"), rsPort, "127.0.0.1");
    await sleep(200);
  }
  probe.close();
  await rsSettled();
}
console.log(`receivers up: capsync listener on ${oursPort}, rsyslogd ${spawnSync(RSYSLOGD, ["-v"], { encoding: "utf8" }).stdout.split("\n")[0].replace(/\s+compiled with:.*/, "").replace(/\s+/g, " ").trim()} on ${rsPort}; load ${loadAvg()}`);

// --- the ladder -------------------------------------------------------------------------------------
const best = { ours: 0, rsyslog: 0 };
const rows = [];
const alive = { ours: true, rsyslog: true };
for (const rate of RATES) {
  if (!alive.ours && !alive.rsyslog) break;
  for (const who of ["ours", "rsyslog"]) {
    if (!alive[who]) continue;
    let row;
    if (who === "ours") {
      const before = await oursReport();
      const k0 = kernelDrops(oursPort);
      const s = await blast(oursPort, rate);
      const after = await oursReport();
      const received = after.received - before.received;
      const handled = after.processed + after.ignored - (before.processed + before.ignored);
      // On loopback a datagram the kernel dropped is one never received: counted once, in sent − received.
      const drops = after.dropped - before.dropped + (s.sent - received);
      row = { who, rate, sent: s.sent, achieved: (s.sent / s.ms) * 1000, handled, drops, kernelDrops: kernelDrops(oursPort) - k0, cpuS: after.cpuS - before.cpuS };
    } else {
      const n0 = rsCount();
      const k0 = kernelDrops(rsPort);
      const c0 = procCpuSeconds(rs.pid);
      const s = await blast(rsPort, rate);
      const n1 = await rsSettled();
      const handled = n1 - n0;
      row = { who, rate, sent: s.sent, achieved: (s.sent / s.ms) * 1000, handled, drops: s.sent - handled, kernelDrops: kernelDrops(rsPort) - k0, cpuS: procCpuSeconds(rs.pid) - c0 };
    }
    row.load = loadAvg();
    rows.push(row);
    const ok = row.drops === 0;
    console.log(`  ${who.padEnd(7)} ${String(rate).padStart(6)}/s asked, ${f1(row.achieved / 1000)}k/s sent: ${row.handled}/${row.sent} handled, ${row.drops} dropped (${row.kernelDrops} by the kernel), ${f1((row.cpuS * 1e6) / row.sent)} µs CPU per message (user+sys, all threads); load ${row.load}${ok ? "" : "  ← drops"}`);
    // A sender that fell short of the rate measured the sender, not the receiver: stop the ladder there.
    if (ok && row.achieved >= 0.95 * rate) best[who] = Math.max(best[who], rate);
    if (!ok || row.achieved < 0.95 * rate) alive[who] = false;
  }
}
ours.stdin.end();
await Promise.all([stopChild(ours, 5000), stopChild(rs, 5000)]);
const senderLimited = rows.filter((r) => r.drops === 0 && r.achieved < 0.95 * r.rate).map((r) => r.who);
const at20 = rows.find((r) => r.who === "ours" && r.rate === TARGET_RATE);
const ratio = best.rsyslog > 0 ? best.ours / best.rsyslog : NaN;
result({ bench: "syslog-ingest", stepS: STEP_S, best, ratio, oursDropsAt20k: at20?.drops, senderLimited, rows });
console.log(
  `syslog ingest, zero-drop rate: capsync ${best.ours}/s, rsyslog imudp→file ${best.rsyslog}/s${senderLimited.length ? ` (sender limit reached by: ${senderLimited.join(", ")})` : ""} → ratio ${senderLimited.includes("rsyslog") ? "≤ " : ""}${f1(ratio * 100)} % (target ≥ 50 %); capsync at 20,000/s: ${at20?.drops ?? "?"} dropped (target 0)`,
);
process.exit(0);

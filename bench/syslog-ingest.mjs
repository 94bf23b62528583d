#!/usr/bin/env node
// Syslog ingest: how many messages per second capsync's listener takes in, parses and matches
// with zero drops, next to rsyslog's imudp (Debian rsyslogd, own config/pid/work dir, writing
// every message to a file in its traditional format) on the same machine, same run, same message
// mix (bench/lib/syslog-mix.mjs), same receive buffer (8 MiB as the kernel counts it).
// capsync is measured twice: "ours" reads the socket in the listener's reader thread (the default),
// "inline" on the main thread (readerThread: false, the design before it) — side by side.
// Each receiver runs in its own process; SENDERS sender processes (bench/lib/udp-blast.mjs, ~200k
// msg/s at most each here) send STEP_S seconds at each rate of a ladder, to each receiver in turn,
// and a rate counts for a receiver only if every datagram was received and handled at ≥ 95 % of
// the asked rate, in one of TRIES tries (the same for every receiver: on a shared machine one
// descheduling can drop a step, or slow the senders; when every try fell short without drops, the
// rate that really arrived counts and the receiver is marked sender-limited): capsync — listener counters (received, processed + prefilter-ignored, queue drops) and the
// kernel's drops on its port; rsyslog — lines in its file and the kernel's drops on its port. A
// warm-up of WARM datagrams at 10k/s goes to every receiver first (uncounted: JIT, caches).
// Loopback only; bounded by the ladder (at most RATES × STEP_S × TRIES datagrams per receiver) and BUDGET_S.
// Usage: npm run build && node bench/syslog-ingest.mjs   (STEP_S=2, RATES=20000,40000,..., SENDERS=2, TRIES=2, WARM=20000, RECEIVERS=ours,inline,rsyslog)
import { spawn, spawnSync } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync, readdirSync, readSync, statSync, writeFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { join } from "node:path";
import { syslogMix } from "./lib/syslog-mix.mjs";
import { ROOT, f1, guard, loadAvg, procCpuSeconds, result, sleep, stopChild, tempDir, track } from "./lib/common.mjs";

const STEP_S = Number(process.env.STEP_S ?? 2);
const RATES = (process.env.RATES ?? "20000,40000,60000,80000,100000,120000,140000,160000,180000,200000,240000,280000,320000,400000").split(",").map(Number);
const BUDGET_S = Number(process.env.BUDGET_S ?? 150);
const SENDERS = Math.max(1, Number(process.env.SENDERS ?? 2));
const TRIES = Math.max(1, Number(process.env.TRIES ?? 2));
const WARM = Number(process.env.WARM ?? 20_000);
const RECEIVERS = (process.env.RECEIVERS ?? "ours,inline,rsyslog").split(",");
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

/**
 * CPU seconds per thread of a process: { tid: { comm, s } }. Shows which thread pays per message
 * (rsyslog: "in:imudp" reads, "rs:main Q:Reg" writes; ours: the reader thread, the main thread).
 */
function threadCpu(pid) {
  const out = {};
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        const st = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
        const f = st.slice(st.lastIndexOf(")") + 2).split(" ");
        out[tid] = { comm: st.slice(st.indexOf("(") + 1, st.lastIndexOf(")")), s: (Number(f[11]) + Number(f[12])) / 100 };
      } catch {
        // the thread ended between the listing and the read
      }
    }
  } catch {
    // the process ended
  }
  return out;
}

/** µs per message of each thread that used ≥ 0.1 µs, the busiest first; the main thread of a Node process is "main". */
function perThread(pid, before, after, sent) {
  return Object.entries(after)
    .map(([tid, a]) => ({ name: tid === String(pid) ? "main" : `${a.comm}:${tid}`, us: ((a.s - (before[tid]?.s ?? 0)) * 1e6) / sent }))
    .filter((x) => x.us >= 0.1)
    .sort((x, y) => y.us - x.us)
    .map((x) => `${x.name} ${f1(x.us)}`)
    .join(", ");
}

/** SENDERS processes, each sending rate / SENDERS per second: one Node sender tops out near 200k/s. */
async function blast(port, rate, seconds = STEP_S) {
  const one = async (i) => {
    const args = [join(ROOT, "bench/lib/udp-blast.mjs"), String(port), String(rate / SENDERS), String(seconds), String(i), mixFile];
    const p = track(spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] }));
    let out = "";
    p.stdout.on("data", (c) => (out += c));
    await new Promise((r) => p.once("exit", r));
    return JSON.parse(out);
  };
  const all = await Promise.all(Array.from({ length: SENDERS }, (_, i) => one(i)));
  return { sent: all.reduce((n, r) => n + r.sent, 0), ms: Math.max(...all.map((r) => r.ms)) };
}

// --- capsync's listener: reader thread ("ours") and main-thread reads ("inline") -------------------
const capsync = {};
for (const who of RECEIVERS.filter((w) => w !== "rsyslog")) {
  const child = track(spawn(process.execPath, [join(ROOT, "bench/lib/listener-child.mjs"), who === "inline" ? "inline" : "thread"], { stdio: ["pipe", "pipe", "inherit"] }));
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const hello = JSON.parse((await lines.next()).value);
  capsync[who] = {
    child,
    port: hello.port,
    recvBufferSize: hello.recvBufferSize,
    async report() {
      child.stdin.write("report\n");
      return JSON.parse((await lines.next()).value);
    },
  };
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
console.log(`receivers up: capsync listener ${Object.entries(capsync).map(([w, c]) => `${w} on ${c.port} (SO_RCVBUF ${c.recvBufferSize})`).join(", ")}, rsyslogd ${spawnSync(RSYSLOGD, ["-v"], { encoding: "utf8" }).stdout.split("\n")[0].replace(/\s+compiled with:.*/, "").replace(/\s+/g, " ").trim()} on ${rsPort}; load ${loadAvg()}`);

// --- warm-up (uncounted) ------------------------------------------------------------------------------
for (const who of RECEIVERS) {
  if (WARM <= 0) break;
  await blast(who === "rsyslog" ? rsPort : capsync[who].port, 10_000, WARM / 10_000);
  if (who === "rsyslog") await rsSettled();
  else await capsync[who].report();
}

// --- the ladder -------------------------------------------------------------------------------------
const best = Object.fromEntries(RECEIVERS.map((w) => [w, 0]));
const rows = [];
const alive = Object.fromEntries(RECEIVERS.map((w) => [w, true]));

/** One step of `rate` to one receiver. */
async function step(who, rate, attempt) {
  let row;
  if (who !== "rsyslog") {
    const c = capsync[who];
    const before = await c.report();
    const k0 = kernelDrops(c.port);
    const t0 = threadCpu(c.child.pid);
    const s = await blast(c.port, rate);
    const after = await c.report();
    const threads = perThread(c.child.pid, t0, threadCpu(c.child.pid), s.sent);
    const received = after.received - before.received;
    const handled = after.processed + after.ignored - (before.processed + before.ignored);
    // On loopback a datagram the kernel dropped is one never received: counted once, in sent − received.
    const drops = after.dropped - before.dropped + (s.sent - received);
    row = { who, rate, attempt, sent: s.sent, achieved: (s.sent / s.ms) * 1000, handled, drops, kernelDrops: kernelDrops(c.port) - k0, cpuS: after.cpuS - before.cpuS, threads };
  } else {
    const n0 = rsCount();
    const k0 = kernelDrops(rsPort);
    const c0 = procCpuSeconds(rs.pid);
    const t0 = threadCpu(rs.pid);
    const s = await blast(rsPort, rate);
    const n1 = await rsSettled();
    const handled = n1 - n0;
    row = { who, rate, attempt, sent: s.sent, achieved: (s.sent / s.ms) * 1000, handled, drops: s.sent - handled, kernelDrops: kernelDrops(rsPort) - k0, cpuS: procCpuSeconds(rs.pid) - c0, threads: perThread(rs.pid, t0, threadCpu(rs.pid), s.sent) };
  }
  row.load = loadAvg();
  rows.push(row);
  console.log(`  ${who.padEnd(7)} ${String(rate).padStart(6)}/s asked, ${f1(row.achieved / 1000)}k/s sent: ${row.handled}/${row.sent} handled, ${row.drops} dropped (${row.kernelDrops} by the kernel), ${f1((row.cpuS * 1e6) / row.sent)} µs CPU per message (user+sys, all threads; by thread: ${row.threads || "-"}); load ${row.load}${row.drops === 0 ? "" : "  ← drops"}${attempt > 1 ? ` (try ${attempt})` : ""}`);
  return row;
}

for (const rate of RATES) {
  if (!RECEIVERS.some((w) => alive[w])) break;
  for (const who of RECEIVERS) {
    if (!alive[who]) continue;
    // Up to TRIES tries for a pass: every datagram handled at ≥ 95 % of the asked rate. A try with
    // drops is the receiver's limit; one whose senders fell short (a loaded machine) is retried.
    const tries = [];
    for (let attempt = 1; attempt <= TRIES; attempt++) {
      const row = await step(who, rate, attempt);
      tries.push(row);
      if (row.drops === 0 && row.achieved >= 0.95 * rate) break;
    }
    if (tries.some((r) => r.drops === 0 && r.achieved >= 0.95 * rate)) {
      best[who] = rate;
      continue;
    }
    // No pass: the receiver's limit (drops), or the senders' (all short): then the rate that
    // really arrived without drops counts, and the ladder stops for this receiver either way.
    const short = tries.filter((r) => r.drops === 0);
    if (short.length === tries.length) best[who] = Math.max(best[who], ...short.map((r) => Math.round(r.achieved)));
    alive[who] = false;
  }
}
for (const c of Object.values(capsync)) c.child.stdin.end();
await Promise.all([...Object.values(capsync).map((c) => stopChild(c.child, 5000)), stopChild(rs, 5000)]);
// Receivers whose ladder ended because the senders fell short (every try of the last rung).
const senderLimited = RECEIVERS.filter((w) => {
  const last = rows.filter((r) => r.who === w);
  const rung = last.at(-1)?.rate;
  const tries = last.filter((r) => r.rate === rung);
  return tries.length > 0 && tries.every((r) => r.drops === 0 && r.achieved < 0.95 * r.rate);
});
const at20 = rows.filter((r) => r.who === "ours" && r.rate === TARGET_RATE).at(-1);
const ratio = best.rsyslog > 0 ? best.ours / best.rsyslog : NaN;
const inlineRatio = best.rsyslog > 0 && best.inline !== undefined ? best.inline / best.rsyslog : NaN;
const rsText = best.rsyslog === undefined ? "not run" : `${best.rsyslog}/s`;
// CPU per message at the highest asked rate every receiver passed without drops (comparable).
const passed = (w) => rows.filter((r) => r.who === w && r.drops === 0).map((r) => r.rate);
const common = Math.min(...RECEIVERS.map((w) => Math.max(...passed(w))).filter((r) => r > 0));
const cpuAt = Object.fromEntries(RECEIVERS.map((w) => [w, rows.filter((r) => r.who === w && r.rate === common && r.drops === 0).map((r) => (r.cpuS * 1e6) / r.sent)[0] ?? null]));
result({ bench: "syslog-ingest", stepS: STEP_S, tries: TRIES, best, ratio, inlineRatio, cpuUsPerMessageAt: { rate: common, ...cpuAt }, oursDropsAt20k: at20?.drops, senderLimited, rows });
const le = senderLimited.includes("rsyslog") ? "≤ " : "";
console.log(
  `syslog ingest, zero-drop rate: capsync ${best.ours}/s (reader thread)${best.inline !== undefined ? `, ${best.inline}/s (main-thread reads)` : ""}, rsyslog imudp→file ${rsText}${senderLimited.length ? ` (sender limit reached by: ${senderLimited.join(", ")})` : ""} → ratio ${le}${f1(ratio * 100)} %${Number.isNaN(inlineRatio) ? "" : ` (main-thread reads ${le}${f1(inlineRatio * 100)} %)`} (target ≥ 80 %); CPU per message at ${common}/s: ${RECEIVERS.map((w) => `${w} ${cpuAt[w] === null ? "?" : f1(cpuAt[w])} µs`).join(", ")}; capsync at 20,000/s: ${at20?.drops ?? "?"} dropped (target 0)`,
);
process.exit(0);

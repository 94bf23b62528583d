#!/usr/bin/env node
// Collection throughput: SFTP download of FILES device captures of SIZE_MB each from emulated
// AudioCodes devices (their SFTP server: ssh2, read-only, password auth), by capsync's own
// collection path (the AudioCodes driver's fetchCapture: ssh2-sftp-client fastGet, size and pcap
// magic check, SHA-256, no-overwrite link; CONCURRENCY at once, as the orchestrator's collect
// limiter) next to OpenSSH's `sftp` client (one process per file, CONCURRENCY at once, password
// through SSH_ASKPASS) on the same files in the same run, alternately ROUNDS times.
// The files are hard links to one generated pcap (SIZE_MB, 1514-byte frames), so the sources take
// SIZE_MB of disk and page cache; each side's downloads are deleted before the next side runs.
// Loopback only; traffic bounded by ROUNDS × 2 × FILES × SIZE_MB; time by BUDGET_S.
// Usage: npm run build && node bench/collect.mjs   (FILES=100 SIZE_MB=50 CONCURRENCY=32 ROUNDS=1)
import { spawn } from "node:child_process";
import { closeSync, linkSync, mkdirSync, openSync, readdirSync, rmSync, statSync, writeFileSync, writeSync, chmodSync } from "node:fs";
import { dirname, join } from "node:path";
import { drivers } from "@capsync/cpe-capture/drivers/index";
import { DEBUG_CAPTURE_REMOTE_PATH } from "@capsync/emulators";
import { f1, f2, guard, loadAvg, median, nowMs, result, startFleet, tempDir, track } from "./lib/common.mjs";

const FILES = Number(process.env.FILES ?? 100);
const SIZE_MB = Number(process.env.SIZE_MB ?? 50);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 32);
const ROUNDS = Number(process.env.ROUNDS ?? 1);
const BUDGET_S = Number(process.env.BUDGET_S ?? 240);
guard(BUDGET_S, "collect");
const dir = tempDir("collect");

// --- one SIZE_MB pcap ------------------------------------------------------------------------------------
const src = join(dir, "capture.pcap");
{
  const fd = openSync(src, "w");
  const head = Buffer.alloc(24);
  head.writeUInt32LE(0xa1b2c3d4, 0);
  head.writeUInt16LE(2, 4);
  head.writeUInt16LE(4, 6);
  head.writeUInt32LE(262144, 16);
  head.writeUInt32LE(1, 20);
  writeSync(fd, head);
  const frame = 1514;
  const per = 16 + frame;
  const n = Math.floor((SIZE_MB * 1e6 - 24) / per);
  const chunk = Buffer.alloc(per * 1000);
  for (let i = 0; i < n; i += 1000) {
    const k = Math.min(1000, n - i);
    for (let j = 0; j < k; j++) {
      const o = j * per;
      chunk.writeUInt32LE(1_790_000_000 + Math.floor((i + j) / 1000), o);
      chunk.writeUInt32LE(((i + j) % 1000) * 1000, o + 4);
      chunk.writeUInt32LE(frame, o + 8);
      chunk.writeUInt32LE(frame, o + 12);
      chunk.writeUInt32LE(i + j, o + 16 + 30); // something that varies
    }
    writeSync(fd, chunk, 0, k * per);
  }
  closeSync(fd);
}
const bytesPerFile = statSync(src).size;
const fleet = await startFleet(FILES, { firstAddress: "127.0.5.1", maxSeconds: BUDGET_S + 30 });
for (const d of fleet.devices) {
  mkdirSync(dirname(d.capturePath), { recursive: true });
  rmSync(d.capturePath, { force: true });
  linkSync(src, d.capturePath);
}
const askpass = join(dir, "askpass.sh");
writeFileSync(askpass, "#!/bin/sh\necho bench-pw\n");
chmodSync(askpass, 0o700);
console.log(`${FILES} emulated devices serving ${f1(bytesPerFile / 1e6)} MB each; ${CONCURRENCY} downloads at once; load ${loadAvg()}`);

async function pool(items, n, fn) {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]);
  }));
}

function downloaded(out) {
  return readdirSync(out).reduce((n, f) => n + statSync(join(out, f)).size, 0);
}

async function ours() {
  const out = join(dir, "ours");
  mkdirSync(out, { recursive: true });
  const c0 = process.cpuUsage();
  const t0 = nowMs();
  await pool(fleet.devices, CONCURRENCY, async (d) => {
    const driver = drivers[d.type]({ address: d.address, type: d.type, username: "Admin", password: "bench-pw", restPort: d.restPort, sshPort: d.sshPort, tls: "insecure", timeouts: { restMs: 10_000, sftpMs: 60_000 }, retries: 0 });
    await driver.fetchCapture({ device: d.address, path: DEBUG_CAPTURE_REMOTE_PATH, protocol: "sftp", stoppedAt: new Date().toISOString(), fileName: `CPE_device_${d.address}.pcap` }, out);
    await driver.cleanup();
  });
  const s = (nowMs() - t0) / 1000;
  const cpu = process.cpuUsage(c0);
  const bytes = downloaded(out);
  rmSync(out, { recursive: true, force: true });
  return { s, bytes, cpuS: (cpu.user + cpu.system) / 1e6 };
}

async function openssh() {
  const out = join(dir, "openssh");
  mkdirSync(out, { recursive: true });
  const t0 = nowMs();
  await pool(fleet.devices, CONCURRENCY, async (d) => {
    const p = track(
      spawn(
        "sftp",
        ["-q", "-P", String(d.sshPort), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password", "-o", "LogLevel=ERROR", `Admin@${d.address}`],
        { stdio: ["pipe", "ignore", "pipe"], env: { PATH: process.env.PATH, SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: "force" } },
      ),
    );
    let err = "";
    p.stderr.on("data", (c) => (err += c));
    p.stdin.end(`get ${DEBUG_CAPTURE_REMOTE_PATH} ${join(out, `CPE_device_${d.address}.pcap`)}\nbye\n`);
    const code = await new Promise((r) => p.once("exit", r));
    if (code !== 0) throw new Error(`sftp ${d.address} exited ${code}: ${err}`);
  });
  const s = (nowMs() - t0) / 1000;
  const bytes = downloaded(out);
  rmSync(out, { recursive: true, force: true });
  return { s, bytes };
}

const runs = { ours: [], openssh: [] };
for (let r = 0; r < ROUNDS; r++) {
  // Alternate which side goes first.
  // SIDES=ours runs one side only (profiling).
  for (const side of (r % 2 ? ["openssh", "ours"] : ["ours", "openssh"]).filter((x) => (process.env.SIDES ?? "ours,openssh").split(",").includes(x))) {
    const x = side === "ours" ? await ours() : await openssh();
    const expected = FILES * bytesPerFile;
    if (x.bytes !== expected) throw new Error(`${side}: downloaded ${x.bytes} bytes, expected ${expected}`);
    runs[side].push(x);
    console.log(`  ${side.padEnd(7)} ${f1(x.bytes / 1e6)} MB in ${f2(x.s)} s = ${f1(x.bytes / 1e6 / x.s)} MB/s${x.cpuS !== undefined ? ` (this process: ${f1(x.cpuS)} CPU s, SHA-256 included)` : ""}`);
  }
}
await fleet.close();
const oursMBs = median(runs.ours.map((x) => x.bytes / 1e6 / x.s));
const sshMBs = median(runs.openssh.map((x) => x.bytes / 1e6 / x.s));
result({ bench: "collect", files: FILES, sizeMB: bytesPerFile / 1e6, concurrency: CONCURRENCY, rounds: ROUNDS, oursMBs, opensshMBs: sshMBs, ratio: oursMBs / sshMBs, runs });
console.log(`collection ${FILES} × ${f1(bytesPerFile / 1e6)} MB over SFTP: capsync ${f1(oursMBs)} MB/s vs OpenSSH sftp ${f1(sshMBs)} MB/s → ratio ${f2(oursMBs / sshMBs)}`);
process.exit(0);

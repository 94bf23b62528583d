// Shared pieces of the benchmarks: child processes that never outlive the benchmark, the agent
// and the emulated fleet as separate processes, statistics, and the one machine-readable result
// line bench/run-all.mjs collects (`RESULT {json}`, printed just before the human ratio line).
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { cpus, totalmem, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { generateSshKeyPair } from "@capsync/server-capture/sftp-keys";

export const ROOT = resolve(import.meta.dirname, "../..");
export const BENCH_KEY = "bench-key-0123456789abcdef0123456789";
const children = new Set();
const dirs = new Set();
/** Agents' capture dirs: their tcpdumps outlive a killed agent by design, so cleanup ends them by cwd. */
const agentDirs = new Set();

/** Kills every process whose working directory is under one of `roots` (an agent's orphaned tcpdumps). */
function killProcessesUnder(roots) {
  if (roots.size === 0) return;
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    let cwd;
    try {
      cwd = readlinkSync(`/proc/${pid}/cwd`).replace(/ \(deleted\)$/, "");
    } catch {
      continue;
    }
    for (const r of roots) {
      if (cwd === r || cwd.startsWith(`${r}/`)) {
        try {
          process.kill(Number(pid), "SIGKILL");
        } catch {
          /* already gone */
        }
        break;
      }
    }
  }
}

/** Kills every child we started (by pid, process group where we made one) and removes temp dirs. */
export function cleanup() {
  for (const c of children) {
    try {
      if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    } catch {
      /* already gone */
    }
  }
  children.clear();
  killProcessesUnder(agentDirs);
  agentDirs.clear();
  // BENCH_KEEP=1 leaves the temp dirs (run folders) for a look afterwards.
  for (const d of dirs) {
    if (process.env.BENCH_KEEP) console.error(`kept ${d}`);
    else rmSync(d, { recursive: true, force: true });
  }
  dirs.clear();
}
process.once("exit", cleanup);
// A benchmark stopped by a signal (run-all's kill, Ctrl-C) still takes its children and temp dirs with it.
// A script with its own handler for the signal decides for itself.
for (const sig of ["SIGTERM", "SIGINT"]) process.once(sig, () => process.listenerCount(sig) === 0 && process.exit(128 + (sig === "SIGINT" ? 2 : 15)));

/** Hard bound on the whole benchmark: past it, everything is killed and the process exits 3. */
export function guard(seconds, name) {
  const t = setTimeout(() => {
    console.error(`${name}: timed out after ${seconds} s`);
    process.exit(3);
  }, seconds * 1000);
  t.unref();
  return t;
}

export function tempDir(prefix) {
  const d = mkdtempSync(join(tmpdir(), `capsync-bench-${prefix}-`));
  dirs.add(d);
  return d;
}

export function track(child) {
  children.add(child);
  child.once("exit", () => children.delete(child));
  return child;
}

export function exited(child) {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once("exit", r));
}

/** Stops a child with SIGTERM, then SIGKILL after `graceMs`. */
export async function stopChild(child, graceMs = 20_000) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  const t = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited(child);
  clearTimeout(t);
}

export function writeKey(dir) {
  const p = join(dir, "agent.key");
  writeFileSync(p, BENCH_KEY);
  chmodSync(p, 0o600);
  return p;
}

/** An ed25519 pair for the agents' SFTP: private key file for the orchestrator, authorized_keys for the agent. */
export function sshKeys(dir) {
  const pair = generateSshKeyPair("capsync-bench");
  const priv = join(dir, "bench_ed25519");
  writeFileSync(priv, pair.private, { mode: 0o600 });
  const auth = join(dir, "authorized_keys");
  writeFileSync(auth, pair.public.trim() + "\n", { mode: 0o600 });
  return { privateKeyFile: priv, authorizedKeysFile: auth };
}

/**
 * A real server-capture agent process. `fakeTcpdump` puts bench/lib/fake-bin (its tcpdump is a stand-in) first on its PATH
 * (fleet-scale benchmarks); otherwise it runs the real tcpdump.
 */
export async function startAgent({ dir, keyFile, maxSessions = 64, fakeTcpdump = false, authorizedKeysFile, iface = "lo", address = "127.0.0.1", sftpPort = 0, extra = [] }) {
  mkdirSync(dir, { recursive: true });
  // The stand-in cannot drop privileges; a real tcpdump keeps the agent's default (-Z tcpdump).
  const user = fakeTcpdump ? ["--tcpdump-user", "root"] : [];
  agentDirs.add(resolve(dir));
  // Its own log file: the agent's default (/var/log/capsync) would be shared by every bench and test.
  const args = [join(ROOT, "packages/server-capture/dist/cli.js"), "--listen", `${address}:0`, "--dir", dir, "--key-file", keyFile, "--interface", iface, "--log-level", "warn", "--log-file", join(dir, "server-capture.log"), "--max-sessions", String(maxSessions), ...user, ...extra];
  if (authorizedKeysFile) args.push("--sftp-listen", `${address}:${sftpPort}`, "--authorized-keys", authorizedKeysFile);
  const env = { ...process.env };
  // The agent finds tcpdump on PATH; bench/lib/fake-bin/tcpdump is the stand-in.
  if (fakeTcpdump) env.PATH = `${join(ROOT, "bench/lib/fake-bin")}:${env.PATH}`;
  // BENCH_PROF=<dir>: CPU profiles of the agent too (written when it exits).
  const prof = process.env.BENCH_PROF ? ["--cpu-prof", "--cpu-prof-dir", join(process.env.BENCH_PROF, "agent")] : [];
  const proc = track(spawn(process.execPath, [...prof, ...args], { stdio: ["ignore", "pipe", "pipe"], env }));
  let err = "";
  proc.stderr.on("data", (d) => (err = (err + d).slice(-4000)));
  let out = "";
  const ready = await new Promise((res, rej) => {
    proc.stdout.on("data", (d) => {
      out += d;
      const m = /ready \S+ (\d+)/.exec(out);
      const s = /sftp \S+ (\d+)/.exec(out);
      if (m && (!authorizedKeysFile || s)) res({ port: Number(m[1]), sftpPort: s ? Number(s[1]) : undefined });
    });
    proc.once("exit", (c) => rej(new Error(`agent exited ${c}: ${err}`)));
  });
  return { ...ready, proc, pid: proc.pid, stderr: () => err, close: () => stopChild(proc) };
}

/**
 * `k` agents at 127.0.0.1, 127.0.0.2, ... (each its own dir under `dir`), all with their SFTP on the
 * same port (a run's config has one agents.sftpPort): the first one's. `opts` as startAgent's.
 */
export async function startAgents(k, { dir, ...opts }) {
  const first = await startAgent({ ...opts, dir: join(dir, "agent-1"), address: "127.0.0.1" });
  const rest = await Promise.all(Array.from({ length: k - 1 }, (_, i) => startAgent({ ...opts, dir: join(dir, `agent-${i + 2}`), address: `127.0.0.${i + 2}`, sftpPort: first.sftpPort ?? 0 })));
  return [first, ...rest].map((a, i) => ({ ...a, host: `127.0.0.${i + 1}` }));
}

/** `n` emulated AudioCodes devices in a child process (bench/lib/fleet-child.mjs). */
export async function startFleet(n, { latencyMs = 0, firstAddress = "127.0.1.1", maxSeconds = 600, captureBytes = 0 } = {}) {
  const proc = track(
    spawn(process.execPath, [join(ROOT, "bench/lib/fleet-child.mjs"), String(n), String(latencyMs), firstAddress, String(maxSeconds), String(captureBytes)], { stdio: ["pipe", "pipe", "inherit"] }),
  );
  let buf = "";
  const { devices } = await new Promise((res, rej) => {
    proc.stdout.on("data", (d) => {
      buf += d;
      const i = buf.indexOf("\n");
      if (i >= 0) res(JSON.parse(buf.slice(0, i)));
    });
    proc.once("exit", (c) => rej(new Error(`fleet exited ${c}`)));
  });
  return {
    devices,
    proc,
    close: async () => {
      proc.stdin.end();
      await stopChild(proc);
    },
  };
}

/** Devices one fleet process serves at most by default: ~3 sockets each stay well under `ulimit -n` (20000 here). */
export const DEVICES_PER_FLEET_PROCESS = 2500;

/**
 * `n` emulated devices over `processes` fleet processes ("auto" or unset: one per
 * DEVICES_PER_FLEET_PROCESS). One process keeps 127.0.1.1 upwards (the figures before); with several,
 * process k serves its slice from 127.<10+k>.0.1, so every address is distinct.
 */
export async function startFleets(n, { processes, ...opts } = {}) {
  const k = processes && processes !== "auto" ? Math.max(1, Number(processes)) : Math.max(1, Math.ceil(n / DEVICES_PER_FLEET_PROCESS));
  if (!Number.isInteger(k) || k > 100) throw new Error(`fleet processes must be an integer 1..100, got ${processes}`);
  const sizes = Array.from({ length: k }, (_, i) => Math.floor(n / k) + (i < n % k ? 1 : 0)).filter((s) => s > 0);
  const fleets = await Promise.all(sizes.map((s, i) => startFleet(s, { ...opts, firstAddress: sizes.length === 1 ? (opts.firstAddress ?? "127.0.1.1") : `127.${10 + i}.0.1` })));
  return {
    devices: fleets.flatMap((f) => f.devices),
    procs: fleets.map((f) => f.proc),
    close: () => Promise.all(fleets.map((f) => f.close())),
  };
}

/** A run.yaml device line for an emulated device. */
export function deviceYaml(d, agents) {
  return `  - { address: ${d.address}, type: ${d.type}, interfaces: [${d.type === "msbr" ? "eth-wan" : "eth-lan"}], username: Admin, password: { env: BENCH_PW }, tls: insecure, restPort: ${d.restPort}, sshPort: ${d.sshPort}, agents: [${agents.join(", ")}] }`;
}

/**
 * The benches' run config for `devices` (agent of each: `agentOf(device)`, a started agent), as
 * `cpe-capture run --config` reads it: <dir>/run.yaml. One file even for 10,000 devices (~1.7 MB;
 * the loader takes up to 16 MiB).
 */
export function writeRunConfig({ dir, keyFile, ssh, sftpPort, concurrency, budgetS, devices, agentOf }) {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, "run.yaml");
  const lines = [
    `output: ${join(dir, "runs")}`,
    `concurrency: ${concurrency}`,
    `agents: { keyFile: ${keyFile}, sshKeyFile: ${ssh.privateKeyFile}, sftpPort: ${sftpPort} }`,
    `syslog: { listen: 127.0.0.1:0 }`,
    `stop: { duration: ${budgetS}s }`,
    `verify: false`,
    `devices:`,
    ...devices.map((d) => {
      const a = agentOf(d);
      return deviceYaml(d, [`${a.host}:${a.port}`]);
    }),
  ];
  writeFileSync(file, lines.join("\n") + "\n");
  return file;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

export function median(a) {
  const s = [...a].sort((x, y) => x - y);
  if (!s.length) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Nearest-rank quantile. */
export function quantile(a, p) {
  const s = [...a].sort((x, y) => x - y);
  if (!s.length) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))];
}

export function stats(a) {
  return { n: a.length, p50: quantile(a, 0.5), p99: quantile(a, 0.99), max: Math.max(...a) };
}

/** CPU seconds (user+sys) of a process from /proc, for processes that are not us. */
export function procCpuSeconds(pid) {
  try {
    const st = spawnSync("cat", [`/proc/${pid}/stat`]).stdout.toString();
    const f = st.slice(st.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return NaN;
  }
}

/** RSS and peak RSS (VmHWM) of a process in MB. */
export function procRssMb(pid) {
  try {
    const s = spawnSync("cat", [`/proc/${pid}/status`]).stdout.toString();
    const rss = /VmRSS:\s+(\d+)/.exec(s);
    const hwm = /VmHWM:\s+(\d+)/.exec(s);
    return { rss: rss ? Number(rss[1]) / 1024 : NaN, peak: hwm ? Number(hwm[1]) / 1024 : NaN };
  } catch {
    return { rss: NaN, peak: NaN };
  }
}

/** Samples this process's RSS every `everyMs` (cheap: memoryUsage.rss() only); peak per named phase in MB. */
export function rssSampler(everyMs = 100) {
  const peaks = {};
  let phase = "start";
  const sample = () => (peaks[phase] = Math.max(peaks[phase] ?? 0, process.memoryUsage.rss() / 1048576));
  const t = setInterval(sample, everyMs);
  t.unref();
  return {
    phase(name) {
      sample();
      phase = name;
    },
    stop() {
      sample();
      clearInterval(t);
      return { ...peaks, max: Math.max(...Object.values(peaks)) };
    },
  };
}

export function loadAvg() {
  return spawnSync("cat", ["/proc/loadavg"]).stdout.toString().split(" ").slice(0, 3).join(" ");
}

export function machine() {
  const v = (cmd, args) => {
    const r = spawnSync(cmd, args, { encoding: "utf8" });
    return `${r.stdout}${r.stderr}`.split("\n")[0].trim();
  };
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? "?",
    ramGiB: +(totalmem() / 2 ** 30).toFixed(1),
    kernel: v("uname", ["-r"]),
    node: process.version,
    tcpdump: v("tcpdump", ["--version"]),
    load: loadAvg(),
  };
}

/** The line bench/run-all.mjs reads; printed just before the human summary line. */
export function result(obj) {
  console.log(`RESULT ${JSON.stringify(obj)}`);
}

export const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : String(x));
export const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : String(x));

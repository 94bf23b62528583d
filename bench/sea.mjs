#!/usr/bin/env node
// The one-file executables next to `node packages/.../dist/...` in the same run (`npm run dist`
// first; as root, for the agent): file sizes, start-up (`--version`, `--help`: ROUNDS rounds, the
// commands alternating within each round so load hits all alike; median and min wall time, median
// user+system CPU), and the agent's SFTP send rate of one FILE_MB file to OpenSSH `sftp` with
// each of ssh2's two native ciphers (the executable loads that binding from its SEA asset).
import { spawn, spawnSync } from "node:child_process";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, cleanup, guard, machine, median, nowMs, sshKeys, stopChild, tempDir, track, writeKey } from "./lib/common.mjs";

guard(Number(process.env.BUDGET_S ?? 300), "sea");
const ROUNDS = Number(process.env.ROUNDS ?? 30);
const FILE_MB = Number(process.env.FILE_MB ?? 200);
const version = (pkg) => JSON.parse(readFileSync(join(ROOT, "packages", pkg, "package.json"), "utf8")).version;
const exe = (name) => join(ROOT, "dist", `${name}-${version(name)}-${process.platform}-${process.arch}`);
const CLIS = [
  { name: "cpe-capture", exe: exe("cpe-capture"), script: join(ROOT, "packages/cpe-capture/dist/index.js") },
  { name: "server-capture", exe: exe("server-capture"), script: join(ROOT, "packages/server-capture/dist/cli.js") },
];
const mb = (n) => (n / 1e6).toFixed(1);

console.log(JSON.stringify(machine()));
for (const c of CLIS) console.log(`${c.name}: executable ${mb(statSync(c.exe).size)} MB (node itself ${mb(statSync(process.execPath).size)} MB)`);

/** Wall ms of one run, which must exit 0. */
function timed(cmd, args) {
  const t0 = nowMs();
  const r = spawnSync(cmd, args, { stdio: ["ignore", "ignore", "pipe"] });
  const wall = nowMs() - t0;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: exit ${r.status}: ${r.stderr}`);
  return wall;
}

const cases = [["node -e 0", process.execPath, ["-e", "0"]]];
for (const c of CLIS) {
  for (const arg of ["--version", "--help"]) {
    cases.push([`${c.name} ${arg} (executable)`, c.exe, [arg]]);
    cases.push([`node dist/ ${c.name} ${arg}`, process.execPath, [c.script, arg]]);
  }
}
const walls = new Map(cases.map(([label]) => [label, []]));
const cpu = new Map(cases.map(([label]) => [label, []]));
for (let i = 0; i < ROUNDS + 2; i++) {
  for (const [label, cmd, args] of i % 2 ? cases : [...cases].reverse()) {
    const kids0 = childCpuMs();
    const w = timed(cmd, args);
    // The first two rounds warm the page cache and are not counted.
    if (i >= 2) {
      walls.get(label).push(w);
      cpu.get(label).push(childCpuMs() - kids0);
    }
  }
}
/** CPU ms of all waited-for children so far (utime + stime of this process's children). */
function childCpuMs() {
  const f = readFileSync("/proc/self/stat", "utf8").split(") ")[1].split(" ");
  // Fields 16 and 17 of stat (cutime, cstime) are at 13 and 14 after "pid (comm) ".
  return ((Number(f[13]) + Number(f[14])) * 1000) / 100;
}
console.log(`start-up, ${ROUNDS} rounds: median / min wall ms, median CPU ms`);
for (const [label] of cases) {
  const w = walls.get(label);
  console.log(`  ${label}: ${median(w).toFixed(0)} / ${Math.min(...w).toFixed(0)} ms, CPU ${median(cpu.get(label)).toFixed(0)} ms`);
}

// SFTP: the same agent options, one file, downloaded by OpenSSH sftp three times per agent.
const dir = tempDir("sea");
const keyFile = writeKey(dir);
const { privateKeyFile, authorizedKeysFile } = sshKeys(dir);
const captures = join(dir, "captures");
spawnSync("mkdir", ["-p", captures]);
writeFileSync(join(captures, "big.pcap"), Buffer.alloc(FILE_MB * 1e6, 7));
async function agent(cmd, args) {
  const p = track(spawn(cmd, [...args, "--listen", "127.0.0.1:0", "--dir", captures, "--key-file", keyFile, "--interface", "lo", "--sftp-listen", "127.0.0.1:0", "--authorized-keys", authorizedKeysFile, "--log-level", "warn"], { stdio: ["ignore", "pipe", "inherit"] }));
  let out = "";
  const port = await new Promise((res, rej) => {
    p.stdout.on("data", (d) => {
      out += d;
      const m = /sftp \S+ (\d+)/.exec(out);
      if (m) res(Number(m[1]));
    });
    p.once("exit", (c) => rej(new Error(`agent exited ${c}`)));
  });
  return { p, port };
}
const sftpArgs = (port, cipher) => ["-q", "-b", "-", "-c", cipher, "-i", privateKeyFile, "-P", String(port), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "capsync@127.0.0.1"];
// chacha20-poly1305 is OpenSSH's first choice; ssh2 (capsync's own client) asks for aes128-gcm first.
const CIPHERS = ["chacha20-poly1305@openssh.com", "aes128-gcm@openssh.com"];
console.log(`SFTP send of one ${FILE_MB} MB file to OpenSSH sftp, best of 3:`);
for (const c of CLIS.filter((x) => x.name === "server-capture")) {
  for (const [label, cmd, args] of [["executable", c.exe, []], ["node dist/", process.execPath, [c.script]]]) {
    const a = await agent(cmd, args);
    for (const cipher of CIPHERS) {
      const rates = [];
      for (let i = 0; i < 3; i++) {
        const t0 = nowMs();
        const r = spawnSync("sftp", sftpArgs(a.port, cipher), { input: `get big.pcap ${join(dir, "copy.pcap")}\n`, stdio: ["pipe", "ignore", "pipe"] });
        if (r.status !== 0) throw new Error(`sftp: ${r.stderr}`);
        rates.push(FILE_MB / ((nowMs() - t0) / 1000));
      }
      console.log(`  ${c.name} ${label}, ${cipher}: ${Math.max(...rates).toFixed(1)} MB/s`);
    }
    await stopChild(a.p);
  }
}
cleanup();

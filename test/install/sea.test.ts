// The one-file executables of `npm run dist` on a machine without Node.js. They are built once into
// a temp dir, then run in a mount namespace where every node binary is /dev/null, the checkout
// (node_modules included) is an empty tmpfs and the environment is only a PATH of system
// directories. The agent executable captures with a real tcpdump and serves the file over SFTP;
// the orchestrator executable runs against an emulated AudioCodes device and that agent.
import { execFile } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, readFileSync, readdirSync, readlinkSync, realpathSync, rmSync, statSync, writeFileSync } from "node:fs";
import { delimiter, dirname, join } from "node:path";
import { promisify } from "node:util";
import SftpClient from "ssh2-sftp-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SyslogSender, generateSshKeyPair, ovocConnectionLostAlarm, startAudioCodesDevice, type AudioCodesDevice } from "@capsync/emulators";
import { ROOT, TestPeer, sendTraffic, startAgent, tempDir, udpSink, writeKey, type AgentProc } from "../helpers/agent-proc.js";
import { freeUdpPort, runCli } from "../helpers/cli-proc.js";
import { readPcap } from "../helpers/pcap-lite.js";
import { tcpdumpsFor } from "../helpers/procs.js";

const run = promisify(execFile);
/** Exit code, stdout and stderr of a command, without throwing on a non-zero exit. */
async function outcome(cmd: string, args: string[], timeout = 20_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return run(cmd, args, { timeout, encoding: "utf8" }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

const VERSION = (name: string) => (JSON.parse(readFileSync(join(ROOT, "packages", name, "package.json"), "utf8")) as { version: string }).version;
const AGENT_NAME = `server-capture-${VERSION("server-capture")}-linux-x64`;
const CPE_NAME = `cpe-capture-${VERSION("cpe-capture")}-linux-x64`;
const SEA_FUSE_SET = "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2:1";
const SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin";
// Addresses no other test file uses.
const DEV = "127.0.172.1";
const SBC = "127.0.172.2";
const SBC_PW = "Sea-Sbc-Secret-17!";

/** Every node binary this machine could run: the one running the tests and any `node` on PATH. */
function nodeBinaries(): string[] {
  const found = [process.execPath, ...(process.env.PATH ?? "").split(delimiter).filter(Boolean).map((d) => join(d, "node"))].filter((p) => existsSync(p) && statSync(p).isFile());
  return [...new Set(found.map((p) => realpathSync(p)))];
}

// sh only passes its arguments on: it hides the files given first, mounts an empty read-only tmpfs
// over the checkout, then execs the rest with an environment of nothing but the system PATH.
const NO_NODE_SCRIPT = [
  "set -e",
  'n=$1; shift; while [ "$n" -gt 0 ]; do mount --bind /dev/null "$1"; shift; n=$((n - 1)); done',
  'mount -t tmpfs -o ro,size=4k capsync-no-checkout "$1"; shift',
  `exec env -i PATH=${SYSTEM_PATH} "$@"`,
].join("\n");

/** `argv` run in a new mount namespace without node or the checkout (unshare, sh and env all exec: the pid is the program's). */
function withoutNode(argv: string[]): string[] {
  const hide = nodeBinaries();
  return ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", NO_NODE_SCRIPT, "sh", String(hide.length), ...hide, ROOT, ...argv];
}

let out: string;
let bin: string;
let agentExe: string;
let cpeExe: string;

beforeAll(async () => {
  out = join(tempDir("capsync-sea-dist-"), "dist");
  const b = await outcome(process.execPath, [join(ROOT, "tools/dist/build.mjs"), "--out", out, "--executables-only"], 240_000);
  expect(b.stderr).toBe("");
  expect(b.code).toBe(0);
  // Copied out of the build dir to where an operator would put them, under their command names.
  bin = tempDir("capsync-sea-bin-");
  agentExe = join(bin, "server-capture");
  cpeExe = join(bin, "cpe-capture");
  copyFileSync(join(out, AGENT_NAME), agentExe);
  copyFileSync(join(out, CPE_NAME), cpeExe);
  chmodSync(agentExe, 0o755);
  chmodSync(cpeExe, 0o755);
}, 300_000);

// 400 MB per run: the two builds and their copies.
afterAll(() => {
  if (out) rmSync(dirname(out), { recursive: true, force: true });
  if (bin) rmSync(bin, { recursive: true, force: true });
});

describe("npm run dist", () => {
  it("builds the two executables, named with their package's version, and a SHA256SUMS that sha256sum -c accepts", async () => {
    expect(readdirSync(out).sort()).toEqual(["SHA256SUMS", CPE_NAME, AGENT_NAME].sort());
    for (const f of [CPE_NAME, AGENT_NAME]) {
      expect(statSync(join(out, f)).mode & 0o777).toBe(0o755);
      const exe = readFileSync(join(out, f));
      expect(exe.subarray(0, 4).toString("latin1")).toBe("\x7fELF");
      // postject flipped the fuse: this node binary runs the injected blob, not a REPL or a script.
      expect(exe.includes(SEA_FUSE_SET)).toBe(true);
    }
    // Names are relative, as sha256sum writes them: checked from inside the download directory.
    const check = await run("sha256sum", ["-c", "SHA256SUMS"], { cwd: out, encoding: "utf8" });
    expect(check.stdout).toBe(`${CPE_NAME}: OK\n${AGENT_NAME}: OK\n`);
  });
});

describe("without node", () => {
  it("the namespace really has no node and no checkout", async () => {
    expect(nodeBinaries()).toContain(realpathSync(process.execPath));
    const [cmd, ...args] = withoutNode(["/usr/bin/env", "node", "--version"]);
    expect(await outcome(cmd!, args)).toEqual({ code: 126, stdout: "", stderr: "/usr/bin/env: 'node': Permission denied\n" });
    const [lcmd, ...largs] = withoutNode(["/bin/ls", "-A", ROOT]);
    expect(await outcome(lcmd!, largs)).toEqual({ code: 0, stdout: "", stderr: "" });
  });

  it("both executables print their version and help", async () => {
    for (const [exe, name] of [[agentExe, "server-capture"], [cpeExe, "cpe-capture"]] as const) {
      const [cmd, ...args] = withoutNode([exe, "--version"]);
      expect(await outcome(cmd!, args)).toEqual({ code: 0, stdout: `${VERSION(name)}\n`, stderr: "" });
      const [hcmd, ...hargs] = withoutNode([exe, "--help"]);
      const help = await outcome(hcmd!, hargs);
      expect(help.code).toBe(0);
      expect(help.stderr).toBe("");
      expect(help.stdout.startsWith(`Usage: ${name} [options]`)).toBe(true);
    }
  });

  it("cpe-capture demo says the demo is not in the executable; exit 2", async () => {
    const [cmd, ...args] = withoutNode([cpeExe, "demo", "--loopback"]);
    expect(await outcome(cmd!, args)).toEqual({
      code: 2,
      stdout: "",
      stderr: "cpe-capture demo: the demo is not part of the one-file executable (it needs the lab package and its emulators); run it from a capsync checkout: npm ci && npm run demo\n",
    });
  });
});

describe("the executables at work, without node", () => {
  let keyDir: string;
  let agent: AgentProc;
  let sbc: AudioCodesDevice;
  const pair = generateSshKeyPair("capsync-sea");

  beforeAll(async () => {
    keyDir = tempDir("capsync-sea-keys-");
    writeKey(keyDir);
    writeFileSync(join(keyDir, "id_ed25519"), pair.private, { mode: 0o600 });
    writeFileSync(join(keyDir, "authorized_keys"), `${pair.public}\n`, { mode: 0o600 });
    agent = await startAgent(
      ["--key-file", join(keyDir, "agent.key"), "--interface", "lo", "--sftp-listen", "127.0.0.1:0", "--authorized-keys", join(keyDir, "authorized_keys")],
      { command: withoutNode([agentExe]) },
    );
    sbc = await startAudioCodesDevice({ type: "gwsbc", address: SBC, username: "Admin", password: SBC_PW, capture: { kind: "synthetic", packetsPerSecond: 100 } });
  });

  afterAll(async () => {
    await sbc?.close();
    await agent?.stop();
  });

  it("the agent is the executable itself, not node, with ssh2's native crypto loaded from its asset and the extracted file gone", () => {
    expect(readlinkSync(`/proc/${agent.child.pid}/exe`)).toBe(agentExe);
    expect(agent.stdout()).toMatch(/^server-capture ready 127\.0\.0\.1 \d+\nserver-capture sftp 127\.0\.0\.1 \d+\n$/);
    // npm ci builds the binding (package.json allowScripts); the executable carries that build.
    expect(existsSync(join(ROOT, "node_modules/ssh2/lib/protocol/crypto/build/Release/sshcrypto.node"))).toBe(true);
    const mapped = [...readFileSync(`/proc/${agent.child.pid}/maps`, "utf8").matchAll(/ (\/\S+)\/sshcrypto\.node \(deleted\)$/gm)].map((m) => m[1]!);
    expect(mapped.length).toBeGreaterThan(0);
    expect(new Set(mapped).size).toBe(1);
    expect(mapped[0]).toMatch(/^\/tmp\/capsync-sshcrypto-\w{6}$/);
    expect(existsSync(mapped[0]!)).toBe(false);
  });

  it("server-capture: CAPTURE/STOP with tcpdump, then the file over SFTP byte for byte (ssh2 and OpenSSH)", async () => {
    const peer = await TestPeer.open();
    const sink = await udpSink(DEV);
    const cpeName = `CPE_device_${DEV}_2026-12-06T02.00.00.000000.pcap`;
    const ovoc = `OVOC_device_${DEV}_2026-12-06T02.00.00.000000-0.pcap`;
    try {
      expect((await peer.request(agent.port, { verb: "CAPTURE", device: DEV })).final.code).toBe(200);
      const tcpdumps = tcpdumpsFor(DEV);
      expect(tcpdumps).toHaveLength(1);
      expect(readFileSync(`/proc/${tcpdumps[0]!.pid}/stat`, "utf8").split(") ")[1]!.split(" ")[1]).toBe(String(agent.child.pid));
      await sendTraffic(DEV, sink.port, 40, 1);
      const stop = await peer.request(agent.port, { verb: "STOP", device: DEV, filename: cpeName });
      expect(stop.final.code).toBe(200);
      expect(stop.final.details.file).toBe(ovoc);
    } finally {
      peer.close();
      sink.close();
    }
    expect(tcpdumpsFor(DEV)).toHaveLength(0);
    const captured = readFileSync(join(agent.dir, ovoc));
    expect(readPcap(join(agent.dir, ovoc)).packets).toHaveLength(40);

    const c = new SftpClient("sea-test", { error: () => {}, end: () => {}, close: () => {} });
    await c.connect({ host: "127.0.0.1", port: agent.sftpPort!, username: "capsync", privateKey: pair.private, readyTimeout: 5000 });
    try {
      expect(((await c.get(`/${ovoc}`)) as Buffer).equals(captured)).toBe(true);
    } finally {
      await c.end();
    }
    // chacha20-poly1305 (OpenSSH's first choice) and aes128-gcm (ssh2-sftp-client's, above) are
    // the two halves of ssh2's native binding.
    const copy = join(keyDir, "openssh-copy.pcap");
    writeFileSync(join(keyDir, "batch"), `get ${ovoc} ${copy}\n`);
    const sftp = await outcome("sftp", [
      "-b", join(keyDir, "batch"), "-i", join(keyDir, "id_ed25519"), "-P", String(agent.sftpPort),
      "-c", "chacha20-poly1305@openssh.com",
      "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR",
      "capsync@127.0.0.1",
    ]);
    expect(sftp.stderr).toBe("");
    expect(sftp.code).toBe(0);
    expect(readFileSync(copy).equals(captured)).toBe(true);
  });

  it("cpe-capture: a run against an emulated AudioCodes SBC and the agent, stopped by the alarm; exit 0, both pcaps collected", async () => {
    const pwFile = join(keyDir, "sbc-password");
    writeFileSync(pwFile, `${SBC_PW}\n`, { mode: 0o600 });
    const syslogPort = await freeUdpPort();
    const cfg = join(keyDir, "run.yaml");
    writeFileSync(
      cfg,
      `output: ./runs
timeouts: { rest: 3s, sftp: 10s, agent: 4s }
retries: 1
verify: false
agents: { keyFile: ./agent.key, sshKeyFile: ./id_ed25519, sftpPort: ${agent.sftpPort} }
syslog: { listen: 127.0.0.1:${syslogPort} }
devices:
  - address: ${SBC}
    type: gwsbc
    interfaces: [eth-lan]
    username: Admin
    password: { file: ./sbc-password }
    tls: insecure
    restPort: ${sbc.restPort}
    sshPort: ${sbc.sshPort}
    agents: [127.0.0.1:${agent.port}]
`,
    );
    const cli = runCli(["run", "--config", cfg, "--json"], {}, withoutNode([cpeExe]));
    await cli.waitFor((l) => l.device === SBC && l.source === "run" && l.event === "state" && l.status === "capturing");
    expect(readlinkSync(`/proc/${cli.child.pid}/exe`)).toBe(cpeExe);
    expect(sbc.state().capturing).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    const udp = await SyslogSender.open({ host: "127.0.0.1", port: syslogPort });
    await udp.send(ovocConnectionLostAlarm({ deviceIp: SBC, format: "rfc3164" }));
    const end = await cli.waitFor((l) => l.done === true, 30_000);
    await udp.close();
    expect(await cli.exited).toBe(0);
    expect(end.exitCode).toBe(0);
    // The emulator's certificate names only the usual lab addresses, so this device is insecure TLS.
    expect(cli.stderr()).toBe(`warning: ${SBC}: TLS certificate not verified (tls: insecure): anyone on the path can pose as this device and read its password\n`);

    const manifest = JSON.parse(readFileSync(join(end.folder!, "manifest.json"), "utf8"));
    expect(manifest.status).toBe("done");
    expect(manifest.version).toBe(VERSION("cpe-capture"));
    const rec = manifest.devices.find((d: { device: string }) => d.device === SBC);
    expect(rec.status).toBe("collected");
    expect(rec.stopReason).toBe("alarm");
    const local = readFileSync(join(end.folder!, rec.captureName));
    expect(local.equals((await sbc.capturedFile())!)).toBe(true);
    expect(local.readUInt32LE(0)).toBe(0xa1b2c3d4);
    const agentName = rec.captureName.replace(/^CPE_/, "OVOC_").replace(/\.pcap$/, "-0.pcap");
    expect(rec.agents.map((a: { capture: string }) => a.capture)).toEqual(["collected"]);
    const fetched = readFileSync(join(end.folder!, agentName));
    expect(fetched.equals(readFileSync(join(agent.dir, agentName)))).toBe(true);
    expect(readPcap(join(end.folder!, agentName)).packets.length).toBe(readPcap(join(agent.dir, agentName)).packets.length);
  });
});

// `cpe-capture trace --capture` over emulated routers on loopback (127.0.219.x, one SSH and one
// RESTCONF port for all), chained by their routing tables: r1 → r2 → n7 (a Nexus switch, a hop that
// takes no capture) → r3, the destination on r3's switch port. Each IOS-XE router's EPC holds the
// traced flow on its out interface on one shared wall-clock schedule (the emulator's `transit`), r3
// missing a quarter of it: the built CLI must trace, capture on r1, r2 and r3, collect, write the
// ordinary flow run folder and name r2 → r3 as where packets vanish. Then --json, a router whose
// RESTCONF refuses (partial, exit 1), a trace that stops short (its hops captured, exit 1), a path with
// one capturing hop (nothing started), a real server-capture agent (tcpdump on lo) as the destination
// host's hop fed by raw datagrams on the routers' schedule, and bad input (exit 2, no hop asked).
import { execFile, execFileSync, spawn } from "node:child_process";
import { chmodSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateSshKeyPair, startIosXeDevice, startNxosDevice, type IosXeDevice, type IosXeTransit, type NxosDevice } from "@capsync/emulators";
import { startAgent, tempDir, writeKey } from "../helpers/agent-proc.js";
import { CPE_CLI } from "../helpers/cli-proc.js";

const USER = "tracer";
const PASS = "Tr4ce-Capture-219";
const SSH_PORT = 42219;
const REST_PORT = 42449;
const NET = "127.0.219";
const devices: (IosXeDevice | NxosDevice)[] = [];
let work: string;

const FLOW = { src: "10.1.1.10", dst: "10.9.9.20", protocol: "udp", sport: 40000, dport: 5000 } as const;
const transit = (iface: string, delayMicros: number, lossRatio?: number): IosXeTransit => ({
  interface: iface,
  ...FLOW,
  packetsPerSecond: 50,
  delayMicros,
  ...(lossRatio !== undefined ? { lossRatio } : {}),
});

beforeAll(async () => {
  work = tempDir("capsync-trace-capture-");
  const xe = (n: number, hostname: string, extra: Partial<Parameters<typeof startIosXeDevice>[0]>) =>
    startIosXeDevice({ address: `${NET}.${n}`, sshPort: SSH_PORT, restPort: REST_PORT, username: USER, password: PASS, hostname, ...extra });
  devices.push(
    await xe(1, "r1", {
      interfaces: [{ name: "GigabitEthernet1", ip: "10.1.1.1 255.255.255.0" }, { name: "GigabitEthernet2", ip: `${NET}.1 255.255.255.0` }],
      routing: { routes: [{ prefix: "10.9.9.0/24", via: `${NET}.2`, interface: "GigabitEthernet2" }, { prefix: "10.77.0.0/16", via: `${NET}.2`, interface: "GigabitEthernet2" }] },
      transit: transit("GigabitEthernet2", 100),
    }),
  );
  devices.push(
    await xe(2, "r2", {
      interfaces: [{ name: "GigabitEthernet1", ip: `${NET}.2 255.255.255.0` }, { name: "GigabitEthernet2", ip: "10.0.27.2 255.255.255.0" }],
      routing: { routes: [{ prefix: "10.9.9.0/24", via: `${NET}.7`, interface: "GigabitEthernet2" }, { prefix: "10.77.0.0/16", via: `${NET}.9`, interface: "GigabitEthernet2" }] },
      transit: transit("GigabitEthernet2", 300),
    }),
  );
  devices.push(
    await startNxosDevice({
      address: `${NET}.7`,
      sshPort: SSH_PORT,
      restPort: REST_PORT,
      username: USER,
      password: PASS,
      hostname: "n7",
      interfaces: [{ name: "Ethernet1/51", address: `${NET}.7/24` }, { name: "Ethernet1/52", address: "10.0.73.7/24" }],
      routes: [{ prefix: "10.9.9.0/24", nextHops: [{ via: `${NET}.3`, interface: "Ethernet1/52" }] }],
    }),
  );
  devices.push(
    await xe(3, "r3", {
      interfaces: [{ name: "GigabitEthernet1/0/1", ip: `${NET}.3 255.255.255.0` }, { name: "Vlan99", ip: "10.9.9.1 255.255.255.0" }, { name: "GigabitEthernet1/0/5" }],
      routing: {
        routes: [{ prefix: "10.9.9.0/24", interface: "Vlan99" }],
        arp: [{ address: "10.9.9.20", mac: "0050.56aa.0920", interface: "Vlan99" }],
        macTable: [{ mac: "0050.56aa.0920", vlan: "99", port: "GigabitEthernet1/0/5" }],
      },
      // A quarter of the flow never reaches r3: lost between r2 and r3.
      transit: transit("GigabitEthernet1/0/5", 700, 0.25),
    }),
  );
}, 60_000);

afterAll(async () => {
  await Promise.all(devices.map((d) => d.close()));
  if (work) rmSync(work, { recursive: true, force: true });
});

const PYTHON = (() => {
  try {
    execFileSync("python3", ["-c", "import socket"], { stdio: "ignore" });
    return process.getuid?.() === 0;
  } catch {
    return false;
  }
})();
/** Raw IPv4/UDP datagrams on the routers' transit schedule: seq due at seq/pps s since the epoch, IP id = seq, the same payload. */
const SENDER = `
import socket, struct, sys, time
src, dst, sport, dport, pps, skip = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
seq = int(time.time() * pps) + 1
while True:
    delay = seq / pps + 0.0005 - time.time()
    if delay > 0: time.sleep(delay)
    if seq % skip != 0:
        payload = ("capsync-transit %s:%d>%s:%d seq=%d\\n" % (src, sport, dst, dport, seq)).ljust(64, ".").encode()
        udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), seq & 0xffff, 0x4000, 64, 17, 0, socket.inet_aton(src), socket.inet_aton(dst))
        s.sendto(ip + udp, (dst, 0))
    seq += 1
`;

const run = promisify(execFile);
async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return run(process.execPath, [CPE_CLI, "trace", ...args], { env: { ...process.env, CAPSYNC_TRACE_PASSWORD: PASS }, cwd: work, timeout: 120_000 }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}
const BASE = [
  ...["--src", FLOW.src, "--dest", FLOW.dst, "--proto", "udp", "--src_port", String(FLOW.sport), "--dest_port", String(FLOW.dport)],
  ...["--target", `${NET}.1`, "--user", USER, "--mode", "auto", "--ssh-port", String(SSH_PORT), "--rest-port", String(REST_PORT), "--insecure"],
];

/** The lines after the trace blocks: from "CAPTURING" on. */
const captureSection = (stdout: string) => stdout.slice(stdout.indexOf("\nCAPTURING")).trim().split("\n");

describe("cpe-capture trace --capture (the built CLI)", () => {
  it("captures on every IOS-XE hop's out interface, lists the Nexus hop as not capturing, names r2 → r3 as where packets vanish", async () => {
    const out = join(work, "runs-ok");
    const r = await cli([...BASE, "--capture", "--duration", "4s", "-o", out]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("TRACE COMPLETE: 4 hops in ");
    const [folder] = readdirSync(out);
    const dir = join(out, folder!);
    const lines = captureSection(r.stdout);
    expect(lines[0]).toBe("CAPTURING 3 points for 4 s (Ctrl-C stops early): hop1 r1 (GigabitEthernet2), hop2 r2 (GigabitEthernet2), hop3 r3 (GigabitEthernet1/0/5)");
    expect(lines[1]).toBe("");
    expect(lines[2]).toBe(`CAPTURE COMPLETE: 3/3 points collected in ${dir}`);
    const files = readdirSync(dir).filter((f) => f.endsWith(".pcap")).sort();
    expect(files.map((f) => f.replace(/_\d{4}-\d\d-\d\dT[\d.]+\.pcap$/, ""))).toEqual([`hop1_CPE_device_${NET}.1`, `hop2_CPE_device_${NET}.2`, `hop3_CPE_device_${NET}.3`]);
    const report = JSON.parse(readFileSync(join(dir, "report.json"), "utf8")) as { points: { name: string; packets: number }[]; paths: { hops: { from: string; to: string; sent: number; lost: number }[] }[] };
    const packets = report.points.map((p) => p.packets);
    expect(lines.slice(3, 7)).toEqual([
      `  hop1 r1 (GigabitEthernet2): ${packets[0]} packets  ${files[0]}`,
      `  hop2 r2 (GigabitEthernet2): ${packets[1]} packets  ${files[1]}`,
      `  hop3 r3 (GigabitEthernet1/0/5): ${packets[2]} packets  ${files[2]}`,
      "  n7 (trace hop 3): not captured (nxos takes no capture)",
    ]);
    // 50 packets/s for about 4 s at each router; r3 misses a quarter.
    expect(packets[0]).toBeGreaterThan(120);
    const [h12, h23] = report.paths[0]!.hops;
    expect(h12).toMatchObject({ from: `hop1-iosxe-${NET}.1`, to: `hop2-iosxe-${NET}.2`, lost: 0 });
    expect(h23!.lost / h23!.sent).toBeGreaterThan(0.15);
    expect(h23!.lost / h23!.sent).toBeLessThan(0.35);
    expect(lines[7]).toBe(`packets vanish between r2 (GigabitEthernet2) and r3: lost ${h23!.lost}/${h23!.sent}`);
    expect(lines[8]).toMatch(/^capsync report: /);
    expect(lines).toHaveLength(9);
    // The ordinary flow run folder: manifest with the flow and its path, the merged capture.
    const manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")) as { flow: { filter: unknown }; path: { hop: number; name: string; capture: string }[] };
    expect(manifest.flow.filter).toEqual({ src: FLOW.src, dst: FLOW.dst, protocol: "udp", sport: FLOW.sport, dport: FLOW.dport });
    expect(manifest.path.map((h) => [h.hop, h.name, h.capture])).toEqual([
      [1, "r1", "collected"],
      [2, "r2", "collected"],
      [3, "r3", "collected"],
    ]);
    expect(readdirSync(dir)).toEqual(expect.arrayContaining(["merged.pcapng", "report.txt", "capsync.log"]));
    // The capture point matched the traced 5-tuple on the out interface, and the password stayed out of the folder.
    expect((devices[0] as IosXeDevice).state().rpcs.map((x) => JSON.stringify(x.input)).join("\n")).toContain("GigabitEthernet2");
    for (const f of ["manifest.json", "capsync.log", "run-config.json"]) expect(readFileSync(join(dir, f), "utf8")).not.toContain(PASS);
  }, 120_000);

  it("--json carries the capture result", async () => {
    const out = join(work, "runs-json");
    const r = await cli([...BASE, "--capture", "--duration", "2s", "-o", out, "--json"]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as { result: string; capture: { started: boolean; exitCode: number; points: { hop: number; label: string; capture: string }[]; skipped: unknown[]; vanish: { between?: number[] } } };
    expect(j.result).toBe("complete");
    expect(j.capture.started).toBe(true);
    expect(j.capture.points.map((p) => [p.hop, p.label, p.capture])).toEqual([
      [1, "r1 (GigabitEthernet2)", "collected"],
      [2, "r2 (GigabitEthernet2)", "collected"],
      [3, "r3 (GigabitEthernet1/0/5)", "collected"],
    ]);
    expect(j.capture.skipped).toEqual([{ traceHop: 3, hostname: "n7", reason: "nxos takes no capture" }]);
    expect(j.capture.vanish.between).toEqual([2, 3]);
  }, 120_000);

  it("a router whose RESTCONF refuses: the others are collected, it is named, exit 1", async () => {
    const r2 = devices[1] as IosXeDevice;
    r2.setFault({ rest: { kind: "unavailable" } });
    try {
      const out = join(work, "runs-partial");
      const r = await cli([...BASE, "--capture", "--duration", "2s", "-o", out]);
      expect(r.code).toBe(1);
      const lines = captureSection(r.stdout);
      const [folder] = readdirSync(out);
      expect(lines[2]).toBe(`CAPTURE PARTIAL: 2/3 points collected in ${join(out, folder!)}`);
      expect(lines[4]).toBe(`  hop2 r2 (GigabitEthernet2): FAILED: device capture failed to start: iosxe ${NET}.2: probe: HTTP 503 RESTCONF is starting up; service unavailable (resource-denied); device missing, servers 0/0`);
      expect(lines[3]).toMatch(/^ {2}hop1 r1 \(GigabitEthernet2\): \d+ packets {2}hop1_CPE_device_127\.0\.219\.1_/);
      expect(lines[5]).toMatch(/^ {2}hop3 r3 \(GigabitEthernet1\/0\/5\): \d+ packets {2}hop3_CPE_device_127\.0\.219\.3_/);
      // r2 has no file: r1 is compared with r3 directly.
      expect(lines[7]).toMatch(/^packets vanish between r1 \(GigabitEthernet2\) and r3: lost \d+\/\d+$/);
    } finally {
      r2.clearFaults();
    }
  }, 180_000);

  it("a trace that stops short still captures the hops it found, says the flow was not seen, exit 1", async () => {
    const out = join(work, "runs-short");
    const r = await cli([...BASE.map((a) => (a === FLOW.dst ? "10.77.0.20" : a)), "--capture", "--duration", "2s", "-o", out]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`TRACE INCOMPLETE (unreachable) after 2 hops in `);
    const [folder] = readdirSync(out);
    const dir = join(out, folder!);
    const lines = captureSection(r.stdout);
    expect(lines.slice(0, 6)).toEqual([
      "CAPTURING 2 points for 2 s (Ctrl-C stops early): hop1 r1 (GigabitEthernet2), hop2 r2 (GigabitEthernet2)",
      "",
      `CAPTURE COMPLETE: 2/2 points collected in ${dir}`,
      expect.stringMatching(/^ {2}hop1 r1 \(GigabitEthernet2\): 0 packets {2}hop1_CPE_device_127\.0\.219\.1_[\d.T-]+\.pcap$/),
      expect.stringMatching(/^ {2}hop2 r2 \(GigabitEthernet2\): 0 packets {2}hop2_CPE_device_127\.0\.219\.2_[\d.T-]+\.pcap$/),
      "the flow was not seen at r1 (GigabitEthernet2) during the capture: nothing to compare",
    ]);
  }, 120_000);

  it("a path with one capturing hop starts no capture, exit 1", async () => {
    const out = join(work, "runs-one");
    const r = await cli([...BASE.map((a) => (a === `${NET}.1` ? `${NET}.7` : a)), "--capture", "--duration", "2s", "-o", out]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("TRACE COMPLETE: 2 hops in ");
    expect(r.stdout.slice(r.stdout.indexOf("\nCAPTURE")).trim().split("\n")).toEqual([
      "CAPTURE NOT STARTED: 1 capture point on the path; a loss report needs two",
      "  n7 (trace hop 1): not captured (nxos takes no capture)",
    ]);
  }, 60_000);

  it("an agent on the destination host (real tcpdump on lo) is the last hop: the host misses a fifth of what r12 sent", async () => {
    // Fails by name, never skips (tools/test-deps.mjs lists python3 for npm test's check).
    expect(PYTHON, "this test sends raw datagrams with python3 as root (Debian: python3)").toBe(true);
    // A second path on loopback addresses, so the flow's packets really cross lo where the agent's
    // tcpdump sees them: r11 → r12, the destination 127.0.219.20 attached to r12's GigabitEthernet3.
    const flow = { src: `${NET}.10`, dst: `${NET}.20`, protocol: "udp" as const, sport: 41000, dport: 5001 };
    const lab = (iface: string, delayMicros: number): IosXeTransit => ({ interface: iface, ...flow, packetsPerSecond: 50, delayMicros });
    devices.push(
      await startIosXeDevice({
        address: `${NET}.11`, sshPort: SSH_PORT, restPort: REST_PORT, username: USER, password: PASS, hostname: "r11",
        interfaces: [{ name: "GigabitEthernet1", ip: `${NET}.11 255.255.255.0` }, { name: "GigabitEthernet2", ip: "10.0.112.11 255.255.255.0" }],
        routing: { routes: [{ prefix: `${NET}.16/28`, via: `${NET}.12`, interface: "GigabitEthernet2" }] },
        transit: lab("GigabitEthernet2", 100),
      }),
      await startIosXeDevice({
        address: `${NET}.12`, sshPort: SSH_PORT, restPort: REST_PORT, username: USER, password: PASS, hostname: "r12",
        interfaces: [{ name: "GigabitEthernet1", ip: `${NET}.12 255.255.255.0` }, { name: "GigabitEthernet3", ip: `${NET}.17 255.255.255.240` }],
        routing: { routes: [{ prefix: `${NET}.16/28`, interface: "GigabitEthernet3" }], arp: [{ address: flow.dst, mac: "0050.56aa.2020", interface: "GigabitEthernet3" }] },
        transit: lab("GigabitEthernet3", 300),
      }),
    );
    const key = writeKey(work);
    const pair = generateSshKeyPair("capsync-trace-capture");
    writeFileSync(join(work, "id_ed25519"), pair.private);
    chmodSync(join(work, "id_ed25519"), 0o600);
    writeFileSync(join(work, "authorized_keys"), pair.public + "\n");
    const agent = await startAgent(["--key-file", key, "--interface", "lo", "--sftp-listen", "127.0.0.1:0", "--authorized-keys", join(work, "authorized_keys")]);
    // The source host: the routers' schedule as real datagrams (the same IP id and payload), every fifth one never sent.
    const sender = spawn("python3", ["-c", SENDER, flow.src, flow.dst, String(flow.sport), String(flow.dport), "50", "5"], { stdio: "ignore" });
    try {
      const out = join(work, "runs-agent");
      const r = await cli([
        ...["--src", flow.src, "--dest", flow.dst, "--proto", "udp", "--src_port", String(flow.sport), "--dest_port", String(flow.dport)],
        ...["--target", `${NET}.11`, "--user", USER, "--mode", "auto", "--ssh-port", String(SSH_PORT), "--rest-port", String(REST_PORT), "--insecure"],
        ...["--capture", "--duration", "4s", "-o", out, "--agent", `dest=127.0.0.1:${agent.port}`, "--key-file", key, "--ssh-key-file", join(work, "id_ed25519"), "--sftp-port", String(agent.sftpPort)],
      ]);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      const lines = captureSection(r.stdout);
      const [folder] = readdirSync(out);
      const dir = join(out, folder!);
      expect(lines[0]).toBe(`CAPTURING 3 points for 4 s (Ctrl-C stops early): hop1 r11 (GigabitEthernet2), hop2 r12 (GigabitEthernet3), hop3 agent 127.0.0.1:${agent.port} (dest host)`);
      expect(lines[2]).toBe(`CAPTURE COMPLETE: 3/3 points collected in ${dir}`);
      expect(lines[5]).toMatch(new RegExp(`^  hop3 agent 127\\.0\\.0\\.1:${agent.port} \\(dest host\\): \\d+ packets  hop3_server_127\\.0\\.0\\.1-${agent.port}_[\\d.T-]+\\.pcap$`));
      const report = JSON.parse(readFileSync(join(dir, "report.json"), "utf8")) as { paths: { hops: { sent: number; lost: number }[] }[] };
      const [h12, h23] = report.paths[0]!.hops;
      expect(h12!.lost).toBe(0);
      expect(h23!.lost / h23!.sent).toBeGreaterThan(0.1);
      expect(h23!.lost / h23!.sent).toBeLessThan(0.3);
      expect(lines[6]).toBe(`packets vanish between r12 (GigabitEthernet3) and agent 127.0.0.1:${agent.port}: lost ${h23!.lost}/${h23!.sent}`);
    } finally {
      sender.kill();
      await agent.stop();
      rmSync(agent.dir, { recursive: true, force: true });
    }
  }, 120_000);

  it.each([
    [["--duration", "5s"], "--duration needs --capture"],
    [["--capture", "--duration", "soon"], /^--duration: /],
    [["--capture", "--agent", "127.0.0.1:20001"], "--agent 127.0.0.1:20001: 127.0.0.1 is neither --src nor --dest; say which host it captures on: src=127.0.0.1:20001 or dest=127.0.0.1:20001"],
    [["--capture", "--agent", "dest=127.0.0.1:20001"], "--agent needs --key-file (the agents' CSYNC/1 pre-shared key, as agents.keyFile of `cpe-capture run`)"],
    [["--capture", "--agent", "dest=127.0.0.1:20001", "--agent", "dest=127.0.0.1:20002", "--key-file", "k"], "--agent dest=127.0.0.1:20002: one agent per side; dest has one already"],
    [["--capture", "--sftp-port", "0"], '--sftp-port: expected 1..65535, got "0"'],
  ])("bad input %j: exit 2, nothing asked", async (extra, message) => {
    const before = (devices[0] as IosXeDevice).state().sshConnections;
    const r = await cli([...BASE, ...extra]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    if (typeof message === "string") expect(r.stderr).toBe(`${message}\n`);
    else expect(r.stderr).toMatch(message);
    expect((devices[0] as IosXeDevice).state().sshConnections).toBe(before);
  });
});

// A mixed run on loopback: an emulated AudioCodes MSBR with a real server-capture agent, an emulated
// Cisco IOS-XE router driven over RESTCONF, and a 2-hop flow along [the IOS-XE, the agent]. The
// real `cpe-capture run` stops on `stop.alarms: [connection-lost, iosxe-lineproto-down]`: a
// %LINEPROTO-5-UPDOWN "down" from the router's own address stops the router — and with it every hop
// of the flow, at the same trigger — while the MSBR keeps capturing until its own Connection Lost.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSocket } from "node:dgram";
import { chmodSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  SyslogSender,
  generateSshKeyPair,
  ovocConnectionLostAlarm,
  startAudioCodesDevice,
  startIosXeDevice,
  type AudioCodesDevice,
  type IosXeDevice,
} from "@capsync/emulators";
import { startAgent, tempDir, writeKey, type AgentProc } from "../helpers/agent-proc.js";
import { freeUdpPort, runCli, type EventLine } from "../helpers/cli-proc.js";
import { readPcap } from "../helpers/pcap-lite.js";
import { tcpdumpsFor } from "../helpers/procs.js";

const MSBR = "127.0.0.71";
const RTR = "127.0.0.72";
const PEER = "127.0.0.73";
const MSBR_PW = "Msbr-Mixed-4711!";
const RTR_PW = "Rtr-Mixed-0815?";
const FLOW_PACKETS = 25;

let work: string;
let agent: AgentProc;
let msbr: AudioCodesDevice;
let rtr: IosXeDevice;

beforeAll(async () => {
  work = tempDir("capsync-mixed-");
  const key = writeKey(work);
  const pair = generateSshKeyPair("capsync-mixed");
  writeFileSync(join(work, "id_ed25519"), pair.private);
  chmodSync(join(work, "id_ed25519"), 0o600);
  writeFileSync(join(work, "authorized_keys"), pair.public + "\n");
  agent = await startAgent(["--key-file", key, "--interface", "lo", "--sftp-listen", "127.0.0.1:0", "--authorized-keys", join(work, "authorized_keys")]);
  msbr = await startAudioCodesDevice({ type: "msbr", address: MSBR, username: "Admin", password: MSBR_PW, capture: { kind: "synthetic", packetsPerSecond: 200 } });
  // The router's synthetic traffic is RTR:5060 <-> PEER:5060 on GigabitEthernet1.
  rtr = await startIosXeDevice({ address: RTR, username: "admin", password: RTR_PW, peer: PEER, packetsPerSecond: 200 });
});
afterAll(async () => {
  await msbr?.close();
  await rtr?.close();
  await agent?.stop();
  if (agent) rmSync(agent.dir, { recursive: true, force: true });
  if (work) rmSync(work, { recursive: true, force: true });
});

const state = (dev: string, s: string) => (l: EventLine) => l.device === dev && l.source === "run" && l.event === "state" && l.status === s;

/** UDP from RTR:5060 to PEER:5060 on lo: the flow as the agent hop sees it. */
async function sendFlow(n: number): Promise<void> {
  const sink = createSocket("udp4");
  await new Promise<void>((r) => sink.bind(5060, PEER, () => r()));
  const s = createSocket("udp4");
  await new Promise<void>((r) => s.bind(5060, RTR, () => r()));
  for (let i = 0; i < n; i++) {
    await new Promise<void>((r) => s.send(`flow-${i}`, 5060, PEER, () => r()));
    // Not the flow: another destination port, and the reverse direction.
    await new Promise<void>((r) => s.send(`other-${i}`, 5061, PEER, () => r()));
    await new Promise<void>((r) => sink.send(`reverse-${i}`, 5060, RTR, () => r()));
    await new Promise((r) => setTimeout(r, 2));
  }
  s.close();
  sink.close();
}

describe("mixed run: AudioCodes + IOS-XE (RESTCONF) + agent, a flow across the router and the agent", () => {
  it("an IOS-XE LINEPROTO down stops the router and its flow hops only; the MSBR runs until its own alarm", async () => {
    const syslog = await freeUdpPort();
    const cfg = join(work, "mixed.yaml");
    writeFileSync(
      cfg,
      `output: ./runs
timeouts: { rest: 3s, sftp: 10s, agent: 4s }
retries: 1
verify: false
agents: { keyFile: ./agent.key, sshKeyFile: ./id_ed25519, sftpPort: ${agent.sftpPort} }
syslog: { listen: 127.0.0.1:${syslog} }
stop:
  alarms: [connection-lost, iosxe-lineproto-down]
  duration: 60s
devices:
  - name: branch
    address: ${MSBR}
    type: msbr
    interfaces: [eth-wan]
    username: Admin
    password: { env: MSBR_PW }
    tls: insecure
    restPort: ${msbr.restPort}
    sshPort: ${msbr.sshPort}
    agents: [127.0.0.1:${agent.port}]
  - name: edge-rtr
    address: ${RTR}
    type: iosxe
    transport: restconf
    interfaces: [GigabitEthernet1]
    username: admin
    password: { env: RTR_PW }
    tls: insecure
    restPort: ${rtr.restPort}
    sshPort: ${rtr.sshPort}
flow:
  filter: { src: ${RTR}, dst: ${PEER}, protocol: udp, sport: 5060, dport: 5060 }
  path: [edge-rtr, agent:127.0.0.1:${agent.port}]
`,
    );
    const cli = runCli(["run", "--config", cfg, "--json"], { MSBR_PW, RTR_PW });
    await cli.waitFor(state(MSBR, "capturing"));
    await cli.waitFor(state(RTR, "capturing"));
    await cli.waitFor(state("flow", "capturing"));
    // The router captures the flow (its EPC match), not everything on the interface.
    expect(rtr.state().capturePoints).toHaveLength(1);
    expect(rtr.state().capturePoints[0]).toMatchObject({ state: "active", match: expect.stringContaining(`udp host ${RTR} eq 5060 host ${PEER} eq 5060`) });
    await sendFlow(FLOW_PACKETS);
    await new Promise((r) => setTimeout(r, 200));

    // The router's own LINEPROTO down, from its address (the matcher takes the sender as the device).
    const fromRouter = await SyslogSender.open({ host: "127.0.0.1", port: syslog, localAddress: RTR });
    await fromRouter.send(Buffer.from("<189>46: *Nov 23 10:15:29.871: %LINEPROTO-5-UPDOWN: Line protocol on Interface GigabitEthernet1, changed state to down"));
    await fromRouter.close();
    await cli.waitFor(state(RTR, "done"));
    await cli.waitFor(state("flow", "done"));
    // The MSBR and its server capture are untouched.
    expect(cli.lines.some(state(MSBR, "stopping"))).toBe(false);
    expect(msbr.state().capturing).toBe(true);
    expect(tcpdumpsFor(MSBR)).toHaveLength(1);

    const udp = await SyslogSender.open({ host: "127.0.0.1", port: syslog });
    await udp.send(ovocConnectionLostAlarm({ deviceIp: MSBR }));
    await udp.close();
    const end = await cli.waitFor((l) => l.done === true, 30_000);
    expect(await cli.exited).toBe(0);
    const folder = end.folder!;
    const m = JSON.parse(readFileSync(join(folder, "manifest.json"), "utf8"));
    expect(m.status).toBe("done");

    // The router: stopped by its LINEPROTO alarm, collected byte-identical, the export deleted from bootflash:.
    const r = m.devices.find((d: { device: string }) => d.device === RTR);
    expect(r).toMatchObject({ type: "iosxe", status: "collected", stopReason: "alarm", stopEvent: { matcher: "iosxe-lineproto-down", from: expect.stringMatching(new RegExp(`^${RTR.replace(/\./g, "\\.")}:\\d+$`)) } });
    expect(r.facts).toMatchObject({ vendor: "Cisco", model: "C8000V" });
    const stamp: string = m.flow.stamp;
    expect(r.captureName).toBe(`CPE_device_${RTR}_${stamp}.pcap`);
    expect(r.deviceFile.name).toBe(`hop1_CPE_device_${RTR}_${stamp}.pcap`);
    const exported = rtr.lastExport()!;
    const got = readFileSync(join(folder, r.deviceFile.name));
    expect(got.equals(exported.data)).toBe(true);
    expect(r.deviceFile.bytes).toBe(exported.data.length);
    expect(rtr.state().bootflash.map((f) => f.name)).not.toContain(exported.name);
    expect(rtr.state().capturePoints).toEqual([]);
    // Only the flow's direction and ports are in the router's capture.
    const rp = readPcap(join(folder, r.deviceFile.name)).packets;
    expect(rp.length).toBeGreaterThan(0);
    expect(new Set(rp.map((p) => `${p.src}:${p.sport}>${p.dst}:${p.dport}/${p.proto}`))).toEqual(new Set([`${RTR}:5060>${PEER}:5060/17`]));

    // The flow: both hops stopped by the router's trigger, one timestamp, files named by hop.
    expect(m.flow).toMatchObject({ state: "done", status: "collected", stopReason: "alarm", triggeredBy: RTR, agentHost: RTR });
    const agentFile = `hop2_server_127.0.0.1-${agent.port}_${stamp}.pcap`;
    expect(m.path).toEqual([
      expect.objectContaining({ hop: 1, kind: "device", name: "edge-rtr", device: RTR, capture: "collected", files: [expect.objectContaining({ name: r.deviceFile.name })] }),
      expect.objectContaining({ hop: 2, kind: "server", name: `127.0.0.1:${agent.port}`, agent: `127.0.0.1:${agent.port}`, capture: "collected", files: [expect.objectContaining({ name: agentFile })] }),
    ]);
    expect(m.path[1].answers.map((a: { verb: string; code: number }) => `${a.verb} ${a.code}`)).toEqual(["CAPTURE 200", "STOP 200"]);
    const hop2 = readPcap(join(folder, agentFile)).packets.map((p) => `${p.src}:${p.sport}>${p.dst}:${p.dport}/${p.proto} ${p.payload?.toString()}`);
    expect(hop2).toEqual(Array.from({ length: FLOW_PACKETS }, (_, i) => `${RTR}:5060>${PEER}:5060/17 flow-${i}`));
    // Stopped together: the flow's STOP left right after the router's trigger, long before the MSBR's.
    const b = m.devices.find((d: { device: string }) => d.device === MSBR);
    expect(Date.parse(m.flow.times.agentsStopSent) - Date.parse(r.stopEvent.receivedAt)).toBeLessThan(1000);
    expect(Date.parse(m.flow.times.agentsStopSent)).toBeLessThan(Date.parse(b.stopEvent.receivedAt));

    // The MSBR: its own alarm, both sides collected, its server capture paired with it in the report.
    expect(b).toMatchObject({ status: "collected", stopReason: "alarm", stopEvent: { matcher: "connection-lost" } });
    expect(b.deviceFile.name).toMatch(/^CPE_device_127\.0\.0\.71_/);
    expect(readFileSync(join(folder, b.deviceFile.name)).equals((await msbr.capturedFile())!)).toBe(true);
    expect(b.agents[0].files.map((f: { name: string }) => f.name)).toEqual([b.captureName.replace(/^CPE_/, "OVOC_").replace(/\.pcap$/, "-0.pcap")]);

    const report = JSON.parse(readFileSync(join(folder, "report.json"), "utf8"));
    const hop1 = `hop1-iosxe-${RTR}`;
    const hop2p = `hop2-server-127.0.0.1:${agent.port}`;
    expect(report.points.map((p: { name: string; role: string }) => `${p.role} ${p.name}`)).toEqual([
      `device msbr-${MSBR}`,
      `server server-127.0.0.1:${agent.port}-for-${MSBR}`,
      `hop ${hop1}`,
      `hop ${hop2p}`,
    ]);
    expect(report.pairs.map((p: { a: string; b: string }) => `${p.a}|${p.b}`)).toEqual([`msbr-${MSBR}|server-127.0.0.1:${agent.port}-for-${MSBR}`, `${hop1}|${hop2p}`]);
    expect(report.paths[0].direction).toBe(`${hop1} → ${hop2p}`);
    expect(tcpdumpsFor(MSBR)).toHaveLength(0);
  });
});

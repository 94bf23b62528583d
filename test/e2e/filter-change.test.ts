// A live filter change on loopback: an emulated IOS-XE router (RESTCONF, EPC filtered by its match)
// with a real server-capture agent (real tcpdump, SFTP) and an emulated AudioCodes MSBR (no filter
// possible), driven by the real `cpe-capture run` + `cpe-capture filter`, and by `cpe-capture
// serve` + POST /api/v1/runs/:id/filter. Traffic matching only the first filter, then only the
// second; every segment is collected, named apart, listed in the manifest and merged in the report.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import { createSocket } from "node:dgram";
import { chmodSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SyslogSender, generateSshKeyPair, ovocConnectionLostAlarm, startAudioCodesDevice, startIosXeDevice, type AudioCodesDevice, type IosXeDevice } from "@capsync/emulators";
import { startAgent, tempDir, writeKey, type AgentProc } from "../helpers/agent-proc.js";
import { CPE_CLI, freeUdpPort, runCli, type EventLine } from "../helpers/cli-proc.js";
import { readPcap } from "../helpers/pcap-lite.js";
import { processesMatching } from "../helpers/procs.js";

/** tcpdumps scoped to `host <device>`, with or without a spec's filter after it. */
const tcpdumpsFor = (device: string) => processesMatching((a) => /(^|\/)tcpdump$/.test(a[0]!) && a.some((w, i) => w === "host" && a[i + 1] === device));

const MSBR = "127.0.157.1";
const RTR = "127.0.157.2";
const PEER = "127.0.157.3";
const MSBR_PW = "Msbr-Filter-4711!";
const RTR_PW = "Rtr-Filter-0815?";
const TOKEN = "filter-change-token-0123456789abcdef";
const N = 20;

let work: string;
let agent: AgentProc;
let msbr: AudioCodesDevice;
let rtr: IosXeDevice;
/** Killed at the end whatever happened, before the work dir goes. */
const children: ChildProcess[] = [];

beforeAll(async () => {
  work = tempDir("capsync-filter-");
  const key = writeKey(work);
  const pair = generateSshKeyPair("capsync-filter");
  writeFileSync(join(work, "id_ed25519"), pair.private);
  chmodSync(join(work, "id_ed25519"), 0o600);
  writeFileSync(join(work, "authorized_keys"), pair.public + "\n");
  agent = await startAgent(["--key-file", key, "--interface", "lo", "--sftp-listen", "127.0.0.1:0", "--authorized-keys", join(work, "authorized_keys")]);
  msbr = await startAudioCodesDevice({ type: "msbr", address: MSBR, username: "Admin", password: MSBR_PW, capture: { kind: "synthetic", packetsPerSecond: 200 } });
  // The router's synthetic flow is RTR:5060 <-> PEER:5060 on GigabitEthernet1, both ways.
  rtr = await startIosXeDevice({ address: RTR, username: "admin", password: RTR_PW, peer: PEER, packetsPerSecond: 200 });
});
afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  await msbr?.close();
  await rtr?.close();
  await agent?.stop();
  if (agent) rmSync(agent.dir, { recursive: true, force: true });
  if (work) rmSync(work, { recursive: true, force: true });
});

function runConfig(syslog: number, output = "./runs"): string {
  return `output: ${output}
timeouts: { rest: 3s, sftp: 10s, agent: 4s }
retries: 1
verify: false
agents: { keyFile: ${join(work, "agent.key")}, sshKeyFile: ${join(work, "id_ed25519")}, sftpPort: ${agent.sftpPort} }
syslog: { listen: 127.0.0.1:${syslog} }
stop:
  alarms: [connection-lost, iosxe-lineproto-down]
  duration: 120s
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
    agents: [127.0.0.1:${agent.port}]
`;
}

/** `count` UDP datagrams from `from` to `to`:7001 (a sink there), payload `<tag>-<i>`. */
async function udp(from: string, to: string, tag: string, count = N): Promise<void> {
  const sink = createSocket("udp4");
  await new Promise<void>((r) => sink.bind(7001, to, () => r()));
  const s = createSocket("udp4");
  await new Promise<void>((r) => s.bind(0, from, () => r()));
  for (let i = 0; i < count; i++) {
    await new Promise<void>((r) => s.send(`${tag}-${i}`, 7001, to, () => r()));
    await new Promise((r) => setTimeout(r, 2));
  }
  await new Promise((r) => setTimeout(r, 200));
  s.close();
  sink.close();
}

const payloads = (file: string) => readPcap(file).packets.filter((p) => p.proto === 17 && p.dport === 7001).map((p) => `${p.src}>${p.dst} ${p.payload?.toString()}`);
const flows = (file: string) => new Set(readPcap(file).packets.map((p) => `${p.src}:${p.sport}>${p.dst}:${p.dport}/${p.proto}`));
const expected = (from: string, to: string, tag: string) => Array.from({ length: N }, (_, i) => `${from}>${to} ${tag}-${i}`);

/** Asynchronous: the emulators live in this process and must keep answering meanwhile. */
async function filterCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CPE_CLI, "filter", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number>((r) => child.once("exit", (c) => r(c ?? -1)));
  return { code, stdout, stderr };
}

const state = (dev: string, s: string) => (l: EventLine) => l.device === dev && l.source === "run" && l.event === "state" && l.status === s;
const REFUSED = `devices[0].capture.filter.protocol: msbr ${MSBR}: filter.protocol: the AudioCodes debug capture has no filter; leave the filter out for this device (filter the file afterwards)`;

type Seg = { segment: number; spec: { filter?: Record<string, unknown> }; filter: { device: string; agents?: string }; endedBy: string; captureName: string; deviceFile: { name: string; bytes: number }; agents: { agent: string; capture: string; files: { name: string; bytes: number }[] }[]; startedAt: string; stoppedAt: string };

describe("cpe-capture filter on a running `cpe-capture run`", () => {
  it("refuses a filter a device cannot honour before anything restarts, then changes the router's twice; every segment is collected", async () => {
    const syslog = await freeUdpPort();
    const cfg = join(work, "run.yaml");
    writeFileSync(cfg, runConfig(syslog));
    const cli = runCli(["run", "--config", cfg, "--json"], { MSBR_PW, RTR_PW });
    children.push(cli.child);
    await cli.waitFor(state(MSBR, "capturing"));
    await cli.waitFor(state(RTR, "capturing"));
    const folder = join(work, "runs", readdirSync(join(work, "runs"))[0]!);
    const point = rtr.state().capturePoints[0]!.name;
    const pid = tcpdumpsFor(RTR)[0]!.pid;

    // Every capturing device by default: the MSBR cannot filter, so nothing restarts anywhere.
    const refused = await filterCli([folder, `--src`, RTR, `--dst`, PEER, `--l4proto`, "udp"]);
    expect(refused).toMatchObject({ code: 2, stdout: "", stderr: `${REFUSED}\n` });
    const bad = await filterCli([folder, "--device", "edge-rtr", "dport=http", "l4proto=udp"]);
    // The message `validate` prints for the same value in a config file.
    expect(bad).toMatchObject({ code: 2, stderr: `devices[1].capture.filter.dport: iosxe ${RTR}: filter.dport: must be a whole number, got "http"\n` });
    expect(await filterCli([folder, "--device", "core-sw", "dport=80"])).toMatchObject({ code: 2, stderr: `devices: 'core-sw' is not a device of this run (branch (${MSBR}), edge-rtr (${RTR}))\n` });
    expect(await filterCli([folder, "--device", "edge-rtr", "vlan=7"])).toMatchObject({ code: 2, stderr: `cpe-capture filter: 'vlan=7': unknown field 'vlan'; expected src, dst, l4proto, protocol, sport, dport, snaplen, direction, capture\n` });
    expect(rtr.state().capturePoints.map((c) => `${c.name} ${c.state}`)).toEqual([`${point} active`]);
    expect(tcpdumpsFor(RTR).map((p) => p.pid)).toEqual([pid]);
    expect(cli.lines.filter(state(RTR, "stopping"))).toEqual([]);

    // polycube's words, as field=value: segment 2 captures RTR → PEER UDP only.
    const first = await filterCli([folder, "--device", "edge-rtr", `src=${RTR}`, `dst=${PEER}`, "l4proto=udp"]);
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(new RegExp(`^edge-rtr \\(${RTR.replace(/\./g, "\\.")}\\): segment 2 capturing with device filter '.+', agents '.+'; segment 1 kept: CPE_device_${RTR.replace(/\./g, "\\.")}_\\S+\\.pcap, OVOC_device_\\S+-0\\.pcap\n$`));
    expect(rtr.state().capturePoints.filter((c) => c.state === "active")).toHaveLength(1);
    expect(rtr.state().capturePoints.find((c) => c.state === "active")!.match).toContain(`udp host ${RTR} host ${PEER}`);
    expect(tcpdumpsFor(RTR)).toHaveLength(1);
    expect(tcpdumpsFor(RTR)[0]!.pid).not.toBe(pid);
    await udp(RTR, PEER, "first");
    await udp(PEER, RTR, "other");
    await new Promise((r) => setTimeout(r, 300));

    // The options spelling: segment 3 captures PEER → RTR UDP only.
    const second = await filterCli([folder, "--device", RTR, "--src", PEER, "--dst", RTR, "--l4proto", "udp"]);
    expect(second.code).toBe(0);
    expect(second.stdout).toContain(": segment 3 capturing");
    await udp(PEER, RTR, "second");
    await udp(RTR, PEER, "other");
    await new Promise((r) => setTimeout(r, 300));

    // The alarm still stops the router (its own LINEPROTO down), then the MSBR's Connection Lost.
    const fromRouter = await SyslogSender.open({ host: "127.0.0.1", port: syslog, localAddress: RTR });
    await fromRouter.send(Buffer.from("<189>46: *Nov 23 10:15:29.871: %LINEPROTO-5-UPDOWN: Line protocol on Interface GigabitEthernet1, changed state to down"));
    await fromRouter.close();
    await cli.waitFor(state(RTR, "done"));
    const s = await SyslogSender.open({ host: "127.0.0.1", port: syslog });
    await s.send(ovocConnectionLostAlarm({ deviceIp: MSBR }));
    await s.close();
    const end = await cli.waitFor((l) => l.done === true, 30_000);
    expect(await cli.exited).toBe(0);
    expect(end.folder).toBe(folder);

    const m = JSON.parse(readFileSync(join(folder, "manifest.json"), "utf8"));
    expect(m.status).toBe("done");
    const r = m.devices.find((d: { device: string }) => d.device === RTR);
    expect(r).toMatchObject({ status: "collected", state: "done", stopReason: "alarm" });
    const segs = r.segments as Seg[];
    expect(segs.map((x) => [x.segment, x.endedBy, x.spec.filter])).toEqual([
      [1, "filter-change", undefined],
      [2, "filter-change", { src: RTR, dst: PEER, protocol: "udp" }],
      [3, "alarm", { src: PEER, dst: RTR, protocol: "udp" }],
    ]);
    // Names: the original's for segment 1, -seg<N> after; the agent's follow the device file's.
    const stamp = "\\d{4}-\\d\\d-\\d\\dT\\d\\d\\.\\d\\d\\.\\d\\d\\.\\d{6}";
    const ip = RTR.replace(/\./g, "\\.");
    segs.forEach((x) => {
      const suffix = x.segment === 1 ? "" : `-seg${x.segment}`;
      expect(x.captureName).toMatch(new RegExp(`^CPE_device_${ip}_${stamp}${suffix}\\.pcap$`));
      expect(x.deviceFile.name).toBe(x.captureName);
      expect(x.agents).toHaveLength(1);
      expect(x.agents[0]!.capture).toBe("collected");
      expect(x.agents[0]!.files.map((f) => f.name)).toEqual([x.captureName.replace(/^CPE_/, "OVOC_").replace(/\.pcap$/, "-0.pcap")]);
      for (const f of [x.deviceFile, ...x.agents[0]!.files]) expect(statSync(join(folder, f.name)).size).toBe(f.bytes);
      expect(Date.parse(x.stoppedAt)).toBeGreaterThanOrEqual(Date.parse(x.startedAt));
    });
    expect(new Set(segs.flatMap((x) => [x.deviceFile.name, x.agents[0]!.files[0]!.name])).size).toBe(6);
    // The record's own names are the last segment's.
    expect(r.captureName).toBe(segs[2]!.captureName);
    expect(r.deviceFile.name).toBe(segs[2]!.deviceFile.name);

    // Packets per segment, both sides: each filter's traffic in its own segment only.
    const agentFile = (i: number) => join(folder, segs[i]!.agents[0]!.files[0]!.name);
    expect(payloads(agentFile(0))).toEqual([]);
    expect(payloads(agentFile(1))).toEqual(expected(RTR, PEER, "first"));
    expect(payloads(agentFile(2))).toEqual(expected(PEER, RTR, "second"));
    const devFile = (i: number) => join(folder, segs[i]!.deviceFile.name);
    expect(readPcap(devFile(1)).packets.length).toBeGreaterThan(0);
    expect(readPcap(devFile(2)).packets.length).toBeGreaterThan(0);
    expect(flows(devFile(1))).toEqual(new Set([`${RTR}:5060>${PEER}:5060/17`]));
    expect(flows(devFile(2))).toEqual(new Set([`${PEER}:5060>${RTR}:5060/17`]));
    expect(flows(devFile(0))).toEqual(new Set([`${RTR}:5060>${PEER}:5060/17`, `${PEER}:5060>${RTR}:5060/17`]));

    // The MSBR never changed: one file, no segments.
    const b = m.devices.find((d: { device: string }) => d.device === MSBR);
    expect(b.status).toBe("collected");
    expect(b.segments).toBeUndefined();

    // The report merges every segment of each capture point.
    const report = JSON.parse(readFileSync(join(folder, "report.json"), "utf8"));
    const byName = new Map<string, { packets: number }>(report.points.map((p: { name: string; packets: number }) => [p.name, p]));
    const devicePackets = [0, 1, 2].reduce((n, i) => n + readPcap(devFile(i)).packets.length, 0);
    const agentPackets = [0, 1, 2].reduce((n, i) => n + readPcap(agentFile(i)).packets.length, 0);
    expect(byName.get(`iosxe-${RTR}`)?.packets).toBe(devicePackets);
    expect(byName.get(`server-127.0.0.1:${agent.port}-for-${RTR}`)?.packets).toBe(agentPackets);
    expect(report.merged.packets).toBe(report.points.reduce((n: number, p: { packets: number }) => n + p.packets, 0));

    // Events and journal say what happened.
    const csv = readFileSync(join(folder, "events.csv"), "utf8");
    expect(csv.match(new RegExp(`^[^,]+,${ip},run,filter-change,ok,`, "gm"))).toHaveLength(2);
    expect(readFileSync(join(folder, "journal.jsonl"), "utf8").match(/"kind":"segment-start"/g)).toHaveLength(2);
    // Nothing listens after the run: the control socket is gone.
    expect(await filterCli([folder, "dport=1", "l4proto=udp"])).toMatchObject({ code: 2, stderr: expect.stringContaining("no running orchestrator for this run folder") });
  });
});

/** A `cpe-capture run` of both devices into its own output dir, both capturing. */
async function startRun(output: string): Promise<{ cli: ReturnType<typeof runCli>; folder: string; syslog: number }> {
  const syslog = await freeUdpPort();
  const cfg = join(work, `${output}.yaml`);
  writeFileSync(cfg, runConfig(syslog, `./${output}`));
  const cli = runCli(["run", "--config", cfg, "--json"], { MSBR_PW, RTR_PW });
  children.push(cli.child);
  await cli.waitFor(state(MSBR, "capturing"));
  await cli.waitFor(state(RTR, "capturing"));
  return { cli, folder: join(work, output, readdirSync(join(work, output))[0]!), syslog };
}

async function alarms(syslog: number, devices: string[]): Promise<void> {
  for (const d of devices) {
    const s = await SyslogSender.open({ host: "127.0.0.1", port: syslog, ...(d === RTR ? { localAddress: RTR } : {}) });
    await s.send(d === RTR ? Buffer.from("<189>46: *Nov 23 10:15:29.871: %LINEPROTO-5-UPDOWN: Line protocol on Interface GigabitEthernet1, changed state to down") : ovocConnectionLostAlarm({ deviceIp: d }));
    await s.close();
  }
}

const segmentClosed = (n: number) => (l: EventLine) => l.device === RTR && l.source === "collect" && l.event === `segment ${n}`;

describe("a filter change that is interrupted", () => {
  it("an alarm while the router restarts still stops both sides and collects every segment", async () => {
    const { cli, folder, syslog } = await startRun("runs-alarm");
    const change = filterCli([folder, "--device", "edge-rtr", `src=${RTR}`, "l4proto=udp"]);
    // The router's next RPC (defining the new capture point) hangs one REST timeout, then its retry works.
    await cli.waitFor(segmentClosed(1));
    rtr.setFault({ rest: { kind: "timeout", on: "rpc", times: 1 } });
    // The agent captures segment 2 (its second CAPTURE 200): the router is restarting now.
    const captured = (l: EventLine) => l.device === RTR && l.source === "agent" && (l.event ?? "").endsWith(" CAPTURE") && l.status === "200";
    await cli.waitFor((l) => captured(l) && cli.lines.filter(captured).length >= 2);
    expect(cli.lines.some((l) => l.device === RTR && l.source === "device" && l.event === "start-capture" && cli.lines.indexOf(l) > cli.lines.findIndex(segmentClosed(1)))).toBe(false);
    await alarms(syslog, [RTR]);
    const answer = await change;
    rtr.clearFaults();
    await cli.waitFor(state(RTR, "done"));
    await alarms(syslog, [MSBR]);
    await cli.waitFor((l) => l.done === true, 30_000);
    const code = await cli.exited;
    expect(code, readFileSync(join(folder, "manifest.json"), "utf8") + answer.stdout + answer.stderr).toBe(0);
    expect(answer.code).toBe(0);
    const m = JSON.parse(readFileSync(join(folder, "manifest.json"), "utf8"));
    const r = m.devices.find((d: { device: string }) => d.device === RTR);
    expect(r).toMatchObject({ status: "collected", state: "done", stopReason: "alarm" });
    const segs = r.segments as Seg[];
    expect(segs.map((x) => [x.segment, x.endedBy, Boolean(x.deviceFile), x.agents[0]!.capture])).toEqual([
      [1, "filter-change", true, "collected"],
      [2, "alarm", true, "collected"],
    ]);
    // The agents' STOP left on the alarm, while the router was still restarting.
    expect(Date.parse(r.times.agentsStopSent)).toBeLessThan(Date.parse(r.times.stopped));
    for (const x of segs) for (const f of [x.deviceFile, ...x.agents[0]!.files]) expect(statSync(join(folder, f.name)).size).toBe(f.bytes);
    expect(tcpdumpsFor(RTR)).toEqual([]);
    expect(rtr.state().capturePoints.filter((c) => c.state === "active")).toEqual([]);
  });

  it("a router that refuses the new capture is reported failed; segment 1 and the agents' segment 2 are kept", async () => {
    const { cli, folder, syslog } = await startRun("runs-refused");
    const change = filterCli([folder, "--device", "edge-rtr", `src=${RTR}`, "l4proto=udp"]);
    await cli.waitFor(segmentClosed(1));
    rtr.setFault({ rest: { kind: "server-error", on: "rpc" } });
    const answer = await change;
    rtr.clearFaults();
    expect(answer.code).toBe(1);
    expect(answer.stdout).toBe("");
    expect(answer.stderr).toMatch(new RegExp(`^edge-rtr \\(${RTR.replace(/\./g, "\\.")}\\): filter change: device capture did not restart: .+; segment 1 kept: CPE_device_\\S+\\.pcap, OVOC_device_\\S+-0\\.pcap\n$`));
    await cli.waitFor(state(RTR, "failed"));
    await alarms(syslog, [MSBR]);
    await cli.waitFor((l) => l.done === true, 30_000);
    expect(await cli.exited).toBe(1);
    const m = JSON.parse(readFileSync(join(folder, "manifest.json"), "utf8"));
    const r = m.devices.find((d: { device: string }) => d.device === RTR);
    expect(r).toMatchObject({ status: "partial", state: "failed", severity: "error" });
    expect(r.description).toMatch(/^filter change: device capture did not restart: .+; segment 1 kept; device missing, servers 1\/1$/);
    const segs = r.segments as Seg[];
    expect(segs.map((x) => [x.segment, Boolean(x.deviceFile), x.agents[0]!.capture, x.agents[0]!.files.length])).toEqual([
      [1, true, "collected", 1],
      [2, false, "collected", 1],
    ]);
    expect(segs[1]!.agents[0]!.files[0]!.name).toMatch(/-seg2-0\.pcap$/);
    for (const x of segs) for (const f of [...(x.deviceFile ? [x.deviceFile] : []), ...x.agents[0]!.files]) expect(statSync(join(folder, f.name)).size).toBe(f.bytes);
    expect(m.devices.find((d: { device: string }) => d.device === MSBR).status).toBe("collected");
    expect(tcpdumpsFor(RTR)).toEqual([]);
  });
});

describe("POST /api/v1/runs/:id/filter on `cpe-capture serve`", () => {
  let server: ChildProcess | undefined;

  it("refuses per target with the config's messages, changes the router's filter, keeps both segments", async () => {
    const dataDir = join(work, "serve-data");
    writeFileSync(join(work, "serve.yaml"), `listen: 127.0.0.1:0\ntokens: [{ env: T_TOKEN }]\ndataDir: ${dataDir}\nrun: {}\n`);
    server = spawn(process.execPath, [CPE_CLI, "serve", "--config", join(work, "serve.yaml")], { env: { ...process.env, T_TOKEN: TOKEN, MSBR_PW, RTR_PW }, stdio: ["ignore", "pipe", "pipe"] });
    children.push(server);
    let log = "";
    server.stdout!.on("data", (d: Buffer) => (log += d.toString()));
    server.stderr!.on("data", (d: Buffer) => (log += d.toString()));
    let base = "";
    for (let i = 0; i < 200 && !base; i++) {
      base = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(log)?.[1] ?? "";
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(base, log).not.toBe("");
    const api = async (path: string, body?: unknown) => {
      const res = await fetch(`${base}${path}`, { method: body === undefined ? "GET" : "POST", headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    const syslog = await freeUdpPort();
    const { parse } = await import("yaml");
    const created = await api("/api/v1/runs", parse(runConfig(syslog)));
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const id = created.body.id as string;
    const devices = async () => ((await api(`/api/v1/runs/${id}`)).body.devices ?? []) as { device: string; state: string }[];
    for (let i = 0; i < 200; i++) {
      const d = await devices();
      if (d.length === 2 && d.every((x) => x.state === "capturing")) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect((await devices()).map((d) => d.state)).toEqual(["capturing", "capturing"]);

    const refused = await api(`/api/v1/runs/${id}/filter`, { filter: { src: RTR, protocol: "udp" } });
    expect(refused).toEqual({ status: 400, body: { id, error: "invalid filter", issues: [REFUSED] } });
    expect((await api(`/api/v1/runs/${id}/filter`, { filter: { dport: 80 }, interfaces: ["GigabitEthernet2"], devices: ["edge-rtr"] })).body.issues).toEqual([
      "interfaces: not changed on a running capture (a filter change sets filter, direction, snaplen); start a new run to change interfaces",
    ]);
    expect((await api(`/api/v1/runs/nope/filter`, { filter: {} })).status).toBe(404);

    const changed = await api(`/api/v1/runs/${id}/filter`, { filter: { src: PEER, dst: RTR, protocol: "udp" }, devices: ["edge-rtr"] });
    expect(changed.status, JSON.stringify(changed.body)).toBe(200);
    expect(changed.body.devices).toEqual([expect.objectContaining({ device: RTR, name: "edge-rtr", ok: true, segment: 2, kept: { segment: 1, files: [expect.stringMatching(/^CPE_device_/), expect.stringMatching(/^OVOC_device_/)] } })]);
    await udp(PEER, RTR, "api");
    await udp(RTR, PEER, "other");
    await new Promise((r) => setTimeout(r, 300));
    expect((await api(`/api/v1/runs/${id}/stop`, {})).status).toBe(202);
    let job: Record<string, unknown> = {};
    for (let i = 0; i < 300; i++) {
      job = (await api(`/api/v1/runs/${id}`)).body;
      if (job.status === "STOPPED" || job.status === "ERROR") break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(job.status, JSON.stringify(job)).toBe("STOPPED");
    expect((await api(`/api/v1/runs/${id}/filter`, { filter: {} })).status).toBe(409);
    const folder = join(dataDir, "runs", job.runId as string);
    const m = JSON.parse(readFileSync(join(folder, "manifest.json"), "utf8"));
    const r = m.devices.find((d: { device: string }) => d.device === RTR);
    expect(r.status).toBe("collected");
    const segs = r.segments as Seg[];
    expect(segs.map((x) => [x.segment, x.endedBy])).toEqual([[1, "filter-change"], [2, "manual"]]);
    expect(payloads(join(folder, segs[1]!.agents[0]!.files[0]!.name))).toEqual(expected(PEER, RTR, "api"));
    expect(flows(join(folder, segs[1]!.deviceFile.name))).toEqual(new Set([`${PEER}:5060>${RTR}:5060/17`]));
    const arts = (await api(`/api/v1/runs/${id}/artifacts`)).body.artifacts as { name: string }[];
    for (const x of segs) expect(arts.map((a) => a.name)).toEqual(expect.arrayContaining([x.deviceFile.name, x.agents[0]!.files[0]!.name]));
  });
});

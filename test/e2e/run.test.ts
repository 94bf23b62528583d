// cpe-capture end to end on loopback: two emulated AudioCodes devices (MSBR with two interfaces,
// GW/SBC), a real server-capture agent with real tcpdump and its read-only SFTP, and the CLI with
// a config file, stopped per device by real syslog "Connection Lost" alarms.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync, writeFileSync, chmodSync } from "node:fs";
import { join } from "node:path";
import { startAudioCodesDevice, type AudioCodesDevice, SyslogSender, ovocConnectionLostAlarm, generateSshKeyPair } from "@capsync/emulators";
import { TEST_KEY, startAgent, tempDir, writeKey, type AgentProc } from "../helpers/agent-proc.js";
import { freeUdpPort, runCli, type CliRun } from "../helpers/cli-proc.js";
import { tcpdumpsFor } from "../helpers/procs.js";

const MSBR_PW = "Msbr-Secret-4711!";
const SBC_PW = "Sbc-Secret-0815?";
const MSBR = "127.0.0.2";
const SBC = "127.0.0.3";

let work: string;
let agent: AgentProc;
let msbr: AudioCodesDevice;
let sbc: AudioCodesDevice;
let sshKeyFile: string;

function config(port: number, over: { msbrPassword?: string; agentPort?: number } = {}): string {
  return `# e2e
output: ./runs
timeouts: { rest: 3s, sftp: 10s, agent: 4s }
retries: 1
agents:
  keyFile: ./agent.key
  sshKeyFile: ./id_ed25519
  sftpPort: ${agentSftpPort}
syslog:
  listen: 127.0.0.1:${port}
stop:
  alarms: [connection-lost]
  duration: 60s
devices:
  - name: branch-msbr
    address: ${MSBR}
    type: msbr
    interfaces: [eth-wan, cellular-wan]
    username: Admin
    password: { env: ${over.msbrPassword ?? "MSBR_PW"} }
    tls: { ca: ./device-ca.pem }
    restPort: ${msbr.restPort}
    sshPort: ${msbr.sshPort}
    agents: [127.0.0.1:${over.agentPort ?? agent.port}]
  - name: hq-sbc
    address: ${SBC}
    type: gwsbc
    username: Admin
    password: { env: SBC_PW }
    tls: insecure
    restPort: ${sbc.restPort}
    sshPort: ${sbc.sshPort}
    agents: [127.0.0.1:${agent.port}]
`;
}
let agentSftpPort = 0;

beforeAll(async () => {
  work = tempDir("capsync-e2e-");
  writeKey(work);
  const pair = generateSshKeyPair("capsync-e2e");
  sshKeyFile = join(work, "id_ed25519");
  writeFileSync(sshKeyFile, pair.private);
  chmodSync(sshKeyFile, 0o600);
  writeFileSync(join(work, "authorized_keys"), pair.public + "\n");
  agent = await startAgent(["--key-file", join(work, "agent.key"), "--interface", "lo", "--sftp-listen", "127.0.0.1:0", "--authorized-keys", join(work, "authorized_keys")]);
  agentSftpPort = await waitSftpPort(agent);
  msbr = await startAudioCodesDevice({ type: "msbr", address: MSBR, username: "Admin", password: MSBR_PW, capture: { kind: "synthetic", packetsPerSecond: 200 } });
  sbc = await startAudioCodesDevice({ type: "gwsbc", address: SBC, username: "Admin", password: SBC_PW, capture: { kind: "synthetic", packetsPerSecond: 200 } });
  writeFileSync(join(work, "device-ca.pem"), msbr.certificate);
});
afterAll(async () => {
  await msbr?.close();
  await sbc?.close();
  await agent?.stop();
});

async function waitSftpPort(a: AgentProc): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const m = /server-capture sftp \S+ (\d+)/.exec(a.stdout());
    if (m) return Number(m[1]);
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`agent SFTP did not start: ${a.stderr()}`);
}

const state = (dev: string, s: string) => (l: { device?: string; source?: string; event?: string; status?: string }) => l.device === dev && l.source === "run" && l.event === "state" && l.status === s;

function grepTree(dir: string, needles: string[]): string[] {
  const hits: string[] = [];
  for (const f of readdirSync(dir, { recursive: true }) as string[]) {
    let text: string;
    try {
      text = readFileSync(join(dir, f)).toString("latin1");
    } catch {
      continue;
    }
    for (const n of needles) if (text.includes(n)) hits.push(`${f}: ${n}`);
  }
  return hits;
}

describe("cpe-capture run --config (AudioCodes + agent + syslog)", () => {
  let run: CliRun;
  let folder: string;

  it("captures both sides, stops each device on its own alarm, and collects everything", async () => {
    const port = await freeUdpPort();
    const cfg = join(work, "run.yaml");
    writeFileSync(cfg, config(port));
    run = runCli(["run", "--config", cfg, "--json"], { MSBR_PW, SBC_PW });
    await run.waitFor(state(MSBR, "capturing"));
    await run.waitFor(state(SBC, "capturing"));
    expect(msbr.state().capturing).toBe(true);
    expect(msbr.state().interfaces).toEqual(["eth-wan", "cellular-wan"]);
    expect(sbc.state().interfaces).toEqual(["eth-lan"]);
    expect(tcpdumpsFor(MSBR)).toHaveLength(1);
    expect(tcpdumpsFor(SBC)).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 300));

    // RFC 3164 alarm for the MSBR; the SBC keeps capturing.
    const udp = await SyslogSender.open({ host: "127.0.0.1", port });
    await udp.send(ovocConnectionLostAlarm({ deviceIp: MSBR, format: "rfc3164" }));
    await run.waitFor(state(MSBR, "done"));
    expect(sbc.state().capturing).toBe(true);
    expect(tcpdumpsFor(SBC)).toHaveLength(1);
    // Then an RFC 5424 alarm for the SBC.
    await udp.send(ovocConnectionLostAlarm({ deviceIp: SBC, format: "rfc5424", ovocHost: "ovoc1" }));
    const end = await run.waitFor((l) => l.done === true);
    await udp.close();
    expect(await run.exited).toBe(0);
    expect(end.exitCode).toBe(0);
    folder = end.folder!;
    expect(msbr.state().capturing).toBe(false);
    expect(tcpdumpsFor(MSBR)).toHaveLength(0);
  });

  it("device pcaps are byte-identical to what the emulators served; agent files renamed to match and identical", async () => {
    const manifest = JSON.parse(readFileSync(join(folder, "manifest.json"), "utf8"));
    expect(manifest.status).toBe("done");
    for (const [addr, dev] of [[MSBR, msbr], [SBC, sbc]] as const) {
      const rec = manifest.devices.find((d: { device: string }) => d.device === addr);
      expect(rec.status).toBe("collected");
      expect(rec.stopReason).toBe("alarm");
      expect(rec.stopEvent.matcher).toBe("connection-lost");
      expect(rec.captureName).toMatch(new RegExp(`^CPE_device_${addr.replace(/\./g, "\\.")}_\\d{4}-\\d\\d-\\d\\dT\\d\\d\\.\\d\\d\\.\\d\\d\\.\\d{6}\\.pcap$`));
      const local = readFileSync(join(folder, rec.captureName));
      expect(local.equals((await dev.capturedFile())!)).toBe(true);
      expect(local.readUInt32LE(0)).toBe(0xa1b2c3d4);
      expect(rec.deviceFile.bytes).toBe(local.length);
      const agentName = rec.captureName.replace(/^CPE_/, "OVOC_").replace(/\.pcap$/, "-0.pcap");
      expect(rec.agents).toHaveLength(1);
      expect(rec.agents[0].capture).toBe("collected");
      expect(rec.agents[0].files.map((f: { name: string }) => f.name)).toEqual([agentName]);
      const got = readFileSync(join(folder, agentName));
      expect(got.equals(readFileSync(join(agent.dir, agentName)))).toBe(true);
      expect(got.length).toBeGreaterThan(24);
      // VERIFY's last probes (ICMP echoes 200 ms apart) may still be under way when STOP leaves 250 ms
      // after it, so its final answer can arrive after STOP's: the order of requests is what is fixed.
      const answers = rec.agents[0].answers.map((a: { verb: string; code: number }) => `${a.verb} ${a.code}`);
      expect(answers.slice(0, 2)).toEqual(["REGISTER 200", "CAPTURE 200"]);
      expect(answers.slice(2).sort()).toEqual(["STOP 200", "VERIFY 200"]);
      // VERIFY before the stop, from both sides: nothing listens on the device's 443, so every
      // connect is refused — a RST crossed the path, which counts as the path working.
      // ICMP echo too: the loopback device address answers it (3 echoes by default).
      const rtt = { min: expect.any(Number), avg: expect.any(Number), max: expect.any(Number) };
      expect(rec.verify.agents).toEqual([{ agent: `127.0.0.1:${agent.port}`, code: 200, details: { tcp: "3/3", snmp: "0/3", icmp: "3/3", icmp_rtt_ms: expect.any(String) }, icmp: { sent: 3, received: 3, rttMs: rtt } }]);
      expect(rec.verify.orchestrator).toEqual({ ok: true, tcp: "3/3", snmp: "0/3", icmp: { sent: 3, received: 3, rttMs: rtt } });
      expect(rec.facts.vendor).toBe("AudioCodes");
    }
    const m = manifest.devices.find((d: { device: string }) => d.device === MSBR);
    const names = m.tasks.map((t: { name: string }) => t.name);
    expect(names.filter((n: string) => n !== "confirm-start" && n !== "confirm-stop")).toEqual(["probe", "start-capture", "stop-capture", "fetch-capture"]);
    expect(m.tasks.every((t: { status: string }) => t.status === "ok")).toBe(true);
  });

  it("writes merged.pcapng (one named interface per capture point) and the three reports", () => {
    const files = readdirSync(folder);
    for (const f of ["merged.pcapng", "report.txt", "report.json", "report.html"]) expect(files).toContain(f);
    const report = JSON.parse(readFileSync(join(folder, "report.json"), "utf8"));
    expect(report.points.map((p: { name: string }) => p.name).sort()).toEqual([`gwsbc-${SBC}`, `msbr-${MSBR}`, `server-127.0.0.1:${agent.port}-for-${MSBR}`, `server-127.0.0.1:${agent.port}-for-${SBC}`].sort());
    const m = readFileSync(join(folder, "merged.pcapng"));
    expect(m.readUInt32LE(0)).toBe(0x0a0d0d0a);
    const packets = report.points.reduce((n: number, p: { packets: number }) => n + p.packets, 0);
    expect(report.merged.packets).toBe(packets);
    expect(report.merged.interfaces).toHaveLength(4);
    expect(readFileSync(join(folder, "report.txt"), "utf8")).toContain(`msbr-${MSBR}`);
  });

  it("events.csv has the tasks in order; nothing in the run folder holds a secret", () => {
    const csv = readFileSync(join(folder, "events.csv"), "utf8").trim().split("\n");
    expect(csv[0]).toBe("timestamp,device,source,event,status,http_status,detail");
    const msbrRows = csv.filter((l) => l.split(",")[1] === MSBR).map((l) => l.split(",").slice(2, 5).join(","));
    const order = ["agent,127.0.0.1:", "device,probe,ok", "device,start-capture,ok", "trigger,syslog connection-lost,stop", "device,stop-capture,ok", "device,fetch-capture,ok", "collect,device file,ok"];
    let at = -1;
    for (const want of order) {
      const i = msbrRows.findIndex((r, idx) => idx > at && r.startsWith(want));
      expect(i, `${want} after row ${at} in\n${msbrRows.join("\n")}`).toBeGreaterThan(at);
      at = i;
    }
    expect(grepTree(folder, [MSBR_PW, SBC_PW, TEST_KEY, readFileSync(sshKeyFile, "utf8").split("\n")[1]!])).toEqual([]);
    const log = readFileSync(join(folder, "capsync.log"), "utf8");
    expect(log).toContain(`${MSBR} stop requested (alarm)`);
    expect(run.stdout() + run.stderr()).not.toContain(MSBR_PW);
  });
});

describe("failure cases", () => {
  it("a wrong password fails that device with its own description; the other device is collected; exit 1", async () => {
    const port = await freeUdpPort();
    const cfg = join(work, "wrongpw.yaml");
    writeFileSync(cfg, config(port, { msbrPassword: "WRONG_PW" }));
    const run = runCli(["run", "--config", cfg, "--json"], { WRONG_PW: "not-the-password", SBC_PW });
    await run.waitFor(state(MSBR, "failed"));
    await run.waitFor(state(SBC, "capturing"));
    const udp = await SyslogSender.open({ host: "127.0.0.1", port });
    await udp.send(ovocConnectionLostAlarm({ deviceIp: SBC }));
    const end = await run.waitFor((l) => l.done === true);
    await udp.close();
    expect(await run.exited).toBe(1);
    const manifest = JSON.parse(readFileSync(join(end.folder!, "manifest.json"), "utf8"));
    const m = manifest.devices.find((d: { device: string }) => d.device === MSBR);
    expect(m.state).toBe("failed");
    expect(m.description).toMatch(/device capture failed to start: .*401/);
    expect(m.stopReason).toBe("start-failed");
    // The agent's capture for the failed device is stopped and kept, never lost.
    expect(m.agents[0].capture).toBe("collected");
    expect(manifest.devices.find((d: { device: string }) => d.device === SBC).status).toBe("collected");
    expect(grepTree(end.folder!, ["not-the-password", SBC_PW])).toEqual([]);
  });

  it("an agent that never answers: the device is still captured and collected; exit 1 with the agent named", async () => {
    const port = await freeUdpPort();
    const dead = await freeUdpPort();
    const cfg = join(work, "deadagent.yaml");
    writeFileSync(cfg, config(port, { agentPort: dead }).replace("agent: 4s", "agent: 1s"));
    const run = runCli(["run", "--config", cfg, "--json"], { MSBR_PW, SBC_PW });
    await run.waitFor(state(MSBR, "capturing"));
    await run.waitFor(state(SBC, "capturing"));
    const udp = await SyslogSender.open({ host: "127.0.0.1", port });
    await udp.send(Buffer.from("<13>Nov 23 10:00:00 junk this is not an alarm \u0000\u0001"));
    await udp.send(ovocConnectionLostAlarm({ deviceIp: MSBR }));
    await udp.send(ovocConnectionLostAlarm({ deviceIp: SBC }));
    const end = await run.waitFor((l) => l.done === true, 30_000);
    await udp.close();
    expect(await run.exited).toBe(1);
    const manifest = JSON.parse(readFileSync(join(end.folder!, "manifest.json"), "utf8"));
    const m = manifest.devices.find((d: { device: string }) => d.device === MSBR);
    expect(m.deviceFile.bytes).toBeGreaterThan(24);
    expect(m.status).toBe("partial");
    expect(m.agents[0].capture).toBe("failed");
    expect(m.agents[0].error).toMatch(new RegExp(`^agent 127\\.0\\.0\\.1:${dead} did not answer REGISTER for 127\\.0\\.0\\.2 after \\d+ tries in 1 s$`));
  });

  it("a device that never answers is a timeout for that device only; exit 1", async () => {
    const port = await freeUdpPort();
    const cfg = join(work, "timeout.yaml");
    writeFileSync(cfg, config(port).replace("rest: 3s", "rest: 1s"));
    msbr.setFault({ rest: { kind: "timeout", on: "status" } });
    try {
      const run = runCli(["run", "--config", cfg, "--json"], { MSBR_PW, SBC_PW });
      await run.waitFor(state(MSBR, "failed"), 30_000);
      await run.waitFor(state(SBC, "capturing"));
      const udp = await SyslogSender.open({ host: "127.0.0.1", port });
      await udp.send(ovocConnectionLostAlarm({ deviceIp: SBC }));
      const end = await run.waitFor((l) => l.done === true, 30_000);
      await udp.close();
      expect(await run.exited).toBe(1);
      const manifest = JSON.parse(readFileSync(join(end.folder!, "manifest.json"), "utf8"));
      const m = manifest.devices.find((d: { device: string }) => d.device === MSBR);
      expect(m.description).toMatch(/^device capture failed to start: GET \/api\/v1\/status to 127\.0\.0\.2:\d+: no answer within 1000 ms; device missing, servers 1\/1$/);
      expect(m.tasks.filter((t: { name: string; status: string }) => t.name === "probe" && t.status === "failed")).toHaveLength(2);
      expect(manifest.devices.find((d: { device: string }) => d.device === SBC).status).toBe("collected");
    } finally {
      msbr.clearFaults();
    }
  });

  it("a bad config is refused before anything starts, with file, line and field; exit 2", () => {
    const cfg = join(work, "bad.yaml");
    writeFileSync(cfg, config(20514).replace("type: gwsbc", "type: msb"));
    let code = 0;
    let err = "";
    try {
      execFileSync(process.execPath, [join(import.meta.dirname, "../../packages/cpe-capture/dist/index.js"), "run", "--config", cfg], { stdio: ["ignore", "pipe", "pipe"], encoding: "utf8" });
    } catch (e) {
      code = (e as { status: number }).status;
      err = (e as { stderr: string }).stderr;
    }
    expect(code).toBe(2);
    const line = readFileSync(cfg, "utf8").split("\n").findIndex((l) => /type: msb$/.test(l)) + 1;
    expect(err).toBe(`${cfg}:${line} devices[1].type: expected msbr|gwsbc|iosxe|nxos, got 'msb'\n`);
  });
});

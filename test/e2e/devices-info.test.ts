// devices_info.json on both sides after a real run, as scripts written for the original
// trafficCapture read it: an emulated AudioCodes MSBR, a real server-capture agent (real tcpdump,
// its SFTP), the CLI stopped by a syslog "Connection Lost" alarm. Also: capsync.log holds every
// CLI script sent and the device's answers, and no password anywhere.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chmodSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SyslogSender, generateSshKeyPair, ovocConnectionLostAlarm, startAudioCodesDevice, type AudioCodesDevice } from "@capsync/emulators";
import { startAgent, tempDir, writeKey, type AgentProc } from "../helpers/agent-proc.js";
import { freeUdpPort, runCli } from "../helpers/cli-proc.js";
import { until } from "../helpers/durability.js";
import { README_CPE_RECORD, README_OVOC_RECORD, expectReadmeShape, parseReadmeRecord } from "../helpers/devices-info-golden.js";

const PW = "Msbr-Info-Secret-31337!";
const MSBR = "127.0.0.157";

let work: string;
let agent: AgentProc;
let msbr: AudioCodesDevice;
let folder: string;

type Rec = Record<string, unknown> & { tasks: Record<string, unknown>[] };

beforeAll(async () => {
  work = tempDir("capsync-devinfo-");
  writeKey(work);
  const pair = generateSshKeyPair("capsync-devinfo");
  writeFileSync(join(work, "id_ed25519"), pair.private);
  chmodSync(join(work, "id_ed25519"), 0o600);
  writeFileSync(join(work, "authorized_keys"), pair.public + "\n");
  agent = await startAgent(["--key-file", join(work, "agent.key"), "--interface", "lo", "--sftp-listen", "127.0.0.1:0", "--authorized-keys", join(work, "authorized_keys")]);
  msbr = await startAudioCodesDevice({ type: "msbr", address: MSBR, username: "Admin", password: PW, capture: { kind: "synthetic", packetsPerSecond: 100 } });

  const port = await freeUdpPort();
  const cfg = join(work, "run.yaml");
  writeFileSync(
    cfg,
    `output: ./runs
timeouts: { rest: 3s, sftp: 10s, agent: 4s }
retries: 1
agents: { keyFile: ./agent.key, sshKeyFile: ./id_ed25519, sftpPort: ${agent.sftpPort} }
syslog: { listen: 127.0.0.1:${port} }
stop: { alarms: [connection-lost], duration: 60s }
devices:
  - name: info-msbr
    address: ${MSBR}
    type: msbr
    interfaces: [eth-wan]
    username: Admin
    password: { env: INFO_PW }
    tls: insecure
    restPort: ${msbr.restPort}
    sshPort: ${msbr.sshPort}
    agents: [127.0.0.1:${agent.port}]
`,
  );
  const run = runCli(["run", "--config", cfg, "--json"], { INFO_PW: PW });
  await run.waitFor((l) => l.device === MSBR && l.source === "run" && l.event === "state" && l.status === "capturing");
  await new Promise((r) => setTimeout(r, 300));
  const udp = await SyslogSender.open({ host: "127.0.0.1", port });
  await udp.send(ovocConnectionLostAlarm({ deviceIp: MSBR, format: "rfc3164" }));
  const end = await run.waitFor((l) => l.done === true);
  await udp.close();
  expect(await run.exited).toBe(0);
  folder = end.folder!;
});

afterAll(async () => {
  await msbr?.close();
  await agent?.stop();
  for (const d of [work, agent?.dir]) if (d) rmSync(d, { recursive: true, force: true });
});

describe("devices_info.json after a real run", () => {
  it("orchestrator side: one record beside manifest.json, the README's keys and formats, this run's values", () => {
    const manifest = JSON.parse(readFileSync(join(folder, "manifest.json"), "utf8"));
    const m = manifest.devices[0];
    const text = readFileSync(join(folder, "devices_info.json"), "utf8");
    expect(text.startsWith('{\n    "devices": [\n')).toBe(true);
    const info = JSON.parse(text) as { devices: Rec[] };
    expect(info.devices).toHaveLength(1);
    const r = info.devices[0]!;
    expectReadmeShape(r, parseReadmeRecord(README_CPE_RECORD));
    expect(r).toMatchObject({
      device: MSBR,
      username: "Admin",
      password: "*****",
      type: "MSBR",
      interfaces: ["eth-wan"],
      ovoc: "127.0.0.1",
      status: "Success",
      severity: "NORMAL",
      state: "not active",
      cpeCapture: "not active",
      cpeEvent: "not active",
      ovocCapture: "not active",
      ovocState: "not active",
      completed: true,
      awaitingResponse: false,
      events: 1,
      registration: "active",
      registerAttempts: 1,
      lastRequest: "STOP",
      lastResponse: "200 OK",
      lastCapture: m.captureName,
      description: `Stored capture from device as file: [${m.captureName}]`,
    });
    const names = r.tasks.map((t) => t.task).filter((n) => n !== "Verify started" && n !== "Verify stopped");
    // Start, VERIFY's traffic (one task per kind sent), stop, download: in the order they happened.
    expect(names.slice(0, 2)).toEqual(["Probe", "Start capture"]);
    expect(names.slice(-2)).toEqual(["Stop capture", "Retrieve capture"]);
    expect(names.slice(2, -2).every((n) => String(n).startsWith("Send "))).toBe(true);
    expect(names).toContain("Send TCP (Port 443)");
    const start = r.tasks.find((t) => t.task === "Start capture")!;
    expect(start).toMatchObject({ status: "Success", statusCode: 200, description: "Successfully executed CLI script on device." });
    expect(String(start.output)).toMatch(/Debug capture physical is active/);
    expect(r.tasks.find((t) => t.task === "Stop capture")).toMatchObject({ status: "Success", statusCode: 200, filename: m.captureName });
    expect(r.tasks.find((t) => t.task === "Retrieve capture")).toMatchObject({ status: "Success", statusCode: -1, filename: m.captureName });
    expect(readdirSync(folder)).toContain("manifest.json");
  });

  it("agent side: its own devices_info.json in its capture dir, the README's keys and formats", async () => {
    const manifest = JSON.parse(readFileSync(join(folder, "manifest.json"), "utf8"));
    const m = manifest.devices[0];
    const ovocName = m.captureName.replace(/^CPE_/, "OVOC_").replace(/\.pcap$/, "-0.pcap");
    // The agent's devices_info.json is a view written at most once a second (state.ts): the STOP's
    // record shows within that second, not necessarily by the time the run has ended.
    const r = await until(
      "the agent's devices_info.json to show the STOP",
      () => {
        const info = JSON.parse(readFileSync(join(agent.dir, "devices_info.json"), "utf8")) as { devices: Rec[] };
        const rec = info.devices.find((d) => d.device === MSBR);
        return rec?.lastRequest === "STOP" && rec;
      },
      3000,
    );
    expectReadmeShape(r, parseReadmeRecord(README_OVOC_RECORD));
    expect(r).toMatchObject({ device: MSBR, state: "not active", ovocCapture: "not active", lastCapture: ovocName, cpeFilename: m.captureName, ovocCapture0: ovocName, lastRequest: "STOP", lastResponse: "200 OK" });
    const tasks = r.tasks.map((t) => t.task);
    for (const want of ["Register device", "Start capture", "Send TCP (Port 443)", "Stop capture", "Rename temporary capture file"]) expect(tasks).toContain(want);
    expect(r.tasks.find((t) => t.task === "Stop capture")).toMatchObject({ status: "Success", filename: m.captureName, description: `Stopped capture on device as file: [${m.captureName}]` });
    expect(r.tasks.find((t) => t.task === "Rename temporary capture file")).toMatchObject({ status: "Success", filename: ovocName });
    expect(readdirSync(agent.dir)).toContain(ovocName);
  });

  it("capsync.log: the CLI scripts sent and the device's answers, no password in the run folder or the agent dir", () => {
    const log = readFileSync(join(folder, "capsync.log"), "utf8");
    const lines = log.split("\n");
    const at = lines.findIndex((l) => / INFO  127\.0\.0\.157 task start-capture attempt 1 CLI script:$/.test(l));
    expect(at, log.slice(0, 3000)).toBeGreaterThan(-1);
    expect(lines.slice(at + 1, at + 5)).toEqual(["    debug capture data physical stop", "    debug capture data physical eth-wan", "    debug capture data physical start", "    debug capture data physical show"]);
    expect(lines[at + 5]).toMatch(/ INFO  127\.0\.0\.157 task start-capture attempt 1 answer \(HTTP 200\):$/);
    expect(lines.slice(at + 6).join("\n")).toMatch(/^ {4}.*Debug capture physical is active/m);
    expect(log).toMatch(/ INFO  127\.0\.0\.157 task stop-capture attempt 1 CLI script:\n {4}debug capture data physical stop\n {4}debug capture data physical show\n/);
    for (const dir of [folder, agent.dir]) {
      for (const f of readdirSync(dir, { recursive: true }) as string[]) {
        let body: string;
        try {
          body = readFileSync(join(dir, f)).toString("latin1");
        } catch {
          continue;
        }
        expect(body.includes(PW), `${f} holds the password`).toBe(false);
      }
    }
  });
});

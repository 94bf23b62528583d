// REGISTER end to end: the real server-capture binary with --ovoc-url against the OVOC REST emulator,
// a UDP socket standing in for the orchestrator. The rule must exist (pointing at the orchestrator)
// before 200 OK, the emulator's Connection Lost must reach the orchestrator as OVOC's exact syslog
// datagram, and the agent must delete its rule after STOP, when idle, and at shutdown.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { ovocConnectionLostAlarm, startOvocEmulator, type OvocEmulator } from "@capsync/emulators";
import { SyslogListener } from "@capsync/cpe-capture/triggers/listener";
import type { SyslogEvent } from "@capsync/cpe-capture/triggers/matchers";
import { TestPeer, startAgent, tempDir, writeKey, type AgentProc } from "../helpers/agent-proc.js";

const USER = "capsync-api";
const PASSWORD = "Ovoc-S3cret:pw#1";
const WRONG = "Wr0ng-Pass:word#9";
const DEV = "127.0.0.21";
const DEV2 = "127.0.0.22";
const LEG = "127.0.0.23";
const AT = new Date("2026-11-23T10:00:00.000Z");
const CPE = (dev: string) => `CPE_device_${dev}_2026-11-23T10.00.00.000000.pcap`;
const b64 = (pw: string) => Buffer.from(`${USER}:${pw}`).toString("base64");

let ovoc: OvocEmulator;
let work: string;
let caFile: string;
let credFile: string;
let keyFile: string;
const agents: AgentProc[] = [];
const peers: TestPeer[] = [];

beforeAll(async () => {
  ovoc = await startOvocEmulator({
    username: USER,
    password: PASSWORD,
    devices: [
      { ipAddress: DEV, name: "msbr-21" },
      { ipAddress: DEV2, name: "sbc-22", deviceType: "SBC" },
      { ipAddress: LEG, name: "msbr-23" },
    ],
    rules: [{ name: "NOC syslog", destSyslog: { syslogServerIP: "127.0.0.1", syslogServerPort: 9 }, alarmNamesFilter: ["acBoardTemperatureAlarm"], alarmDevicesFilter: null }],
  });
  work = tempDir("capsync-ovoc-reg-");
  caFile = join(work, "ovoc-ca.pem");
  writeFileSync(caFile, ovoc.certificate);
  credFile = join(work, "ovoc.cred");
  writeFileSync(credFile, `${USER}:${PASSWORD}\n`);
  chmodSync(credFile, 0o600);
  keyFile = writeKey(work);
});

afterAll(async () => {
  for (const p of peers) p.close();
  await Promise.all(agents.map((a) => a.stop()));
  await ovoc?.close();
});

async function agent(args: string[], env: Record<string, string> = {}): Promise<AgentProc> {
  // The agent inherits the environment at spawn time; CAPSYNC_OVOC_* only for this one.
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    const a = await startAgent(["--interface", "lo", ...args]);
    agents.push(a);
    return a;
  } finally {
    for (const k of Object.keys(env)) if (saved[k] === undefined) delete process.env[k];
  }
}

async function peer(): Promise<TestPeer> {
  const p = await TestPeer.open();
  peers.push(p);
  return p;
}

const rule = (dev: string) => ovoc.rules().find((r) => r.name === `capsync-${dev}`);
const deviceId = (dev: string) => ovoc.devices().find((d) => d.ipAddress === dev)!.id;
const state = (a: AgentProc) => JSON.parse(readFileSync(join(a.dir, "server-capture-state.json"), "utf8")) as { devices: { device: string; registration: string; tasks: { task: string; status: string }[] }[] };
const syslogOf = (all: Buffer[]) => all.find((b) => b[0] === 0x3c);

/** What the original cpe_capture_app's parse_message takes out of a forwarded alarm. */
function originalAlarmFields(text: string) {
  const t = text.replace(/\0+$/, "");
  return {
    isAlarm: /New Alarm -/.test(t),
    alarmType: /New Alarm\s*-\s*(.*?),/.exec(t)?.[1]?.trim(),
    alarm: /,\s*Description:(.*?),/.exec(t)?.[1]?.trim(),
    ipAddress: /,\s*IP Address:(.*?),/.exec(t)?.[1]?.trim(),
  };
}

/** The orchestrator's own alarm path: the datagram into a SyslogListener, out comes a StopEvent (or not). */
async function stopEventFor(buf: Buffer, device: string): Promise<SyslogEvent | undefined> {
  const events: SyslogEvent[] = [];
  const l = new SyslogListener({ onEvent: (e) => events.push(e), udp: false, devices: [device] });
  l.handleDatagram(buf, { address: "127.0.0.1", port: 40000 });
  await l.whenIdle();
  await l.close();
  return events.find((e) => e.kind === "stop");
}

function secretsAbsent(a: AgentProc, pw: string): void {
  const log = readFileSync(join(a.dir, "server-capture.log"), "utf8") + a.stderr() + a.stdout() + readFileSync(join(a.dir, "server-capture-state.json"), "utf8");
  expect(log).not.toContain(pw);
  expect(log).not.toContain(b64(pw));
}

describe("REGISTER with an OVOC management server (CSYNC/1)", () => {
  let a: AgentProc;
  let orch: TestPeer;
  beforeAll(async () => {
    a = await agent(["--key-file", keyFile, "--ovoc-url", ovoc.baseUrl, "--ovoc-ca", caFile, "--ovoc-credentials", credFile]);
    orch = await peer();
  });

  it("creates the rule to the orchestrator before 200 OK; OVOC's Connection Lost then reaches the orchestrator byte for byte", async () => {
    const reg = await orch.request(a.port, { verb: "REGISTER", device: DEV });
    expect(reg.all.map((x) => x.code)).toEqual([100, 200]);
    expect(rule(DEV)).toMatchObject({
      ruleDestType: "SYSLOG",
      forwardType: "ALLOW",
      destSyslog: { syslogServerIP: "127.0.0.1", syslogServerPort: orch.socket.address().port },
      alarmNamesFilter: ["acEMSNodeConnectionLostAlarm"],
      alarmDevicesFilter: [deviceId(DEV)],
    });

    const sent = await ovoc.raiseConnectionLost(DEV, { at: AT });
    expect(sent.map((s) => s.ruleName)).toEqual([`capsync-${DEV}`]);
    const got = await orch.waitFor(syslogOf);
    expect(got).toEqual(ovocConnectionLostAlarm({ deviceIp: DEV, deviceName: "msbr-21", deviceType: "MSBR", timestamp: AT }));
    expect(originalAlarmFields(got.toString("utf8"))).toEqual({ isAlarm: true, alarmType: "Connection Alarm", alarm: "Connection Lost", ipAddress: DEV });
    expect(await stopEventFor(got, DEV)).toMatchObject({ kind: "stop", device: DEV });
    // Another device's alarm has no rule, so no syslog.
    expect(await ovoc.raiseConnectionLost(DEV2, { at: AT })).toEqual([]);
  });

  it("deletes its rule once STOP ended the capture, and only its own", async () => {
    expect((await orch.request(a.port, { verb: "CAPTURE", device: DEV })).final.code).toBe(200);
    const stop = await orch.request(a.port, { verb: "STOP", device: DEV, filename: CPE(DEV) });
    expect(stop.final.code).toBe(200);
    await expect.poll(() => rule(DEV), { timeout: 5000 }).toBeUndefined();
    expect(ovoc.rules().map((r) => r.name)).toEqual(["NOC syslog"]);
    const noc = ovoc.rules()[0]!.id;
    expect(ovoc.requests.filter((r) => r.url.startsWith(`/ovoc/v1/alarms/fwdRules/${noc}`))).toEqual([]);
    await expect.poll(() => state(a).devices.find((d) => d.device === DEV)?.registration).toBe("not active");
    expect(state(a).devices.find((d) => d.device === DEV)!.tasks.map((t) => `${t.task} ${t.status}`)).toEqual(["register ok", "capture ok", "stop ok", "unregister ok"]);
  });

  it("a REGISTER from another orchestrator port moves the same rule (no second rule)", async () => {
    const other = await peer();
    expect((await orch.request(a.port, { verb: "REGISTER", device: DEV2 })).final.code).toBe(200);
    const firstId = rule(DEV2)!.id;
    expect((await other.request(a.port, { verb: "REGISTER", device: DEV2 })).final.code).toBe(200);
    expect(rule(DEV2)).toMatchObject({ id: firstId, destSyslog: { syslogServerPort: other.socket.address().port } });
    expect(ovoc.rules().filter((r) => r.name.startsWith("capsync-"))).toHaveLength(1);
  });

  it("answers 503 with the reason for a device OVOC does not manage", async () => {
    const r = await orch.request(a.port, { verb: "REGISTER", device: "127.0.0.99" });
    expect(r.final).toMatchObject({ code: 503, details: { reason: "ovoc-device-unknown", msg: expect.stringContaining("does not manage a device with IP address 127.0.0.99") } });
    secretsAbsent(a, PASSWORD);
  });
});

describe("REGISTER when OVOC refuses or cannot be reached", () => {
  it("401: 503 reason=ovoc-auth, and the (wrong) password is nowhere: not in the answer, the log or the state file", async () => {
    const a = await agent(["--key-file", keyFile, "--ovoc-url", ovoc.baseUrl, "--ovoc-ca", caFile], { CAPSYNC_OVOC_USER: USER, CAPSYNC_OVOC_PASSWORD: WRONG });
    const orch = await peer();
    const r = await orch.request(a.port, { verb: "REGISTER", device: DEV });
    expect(r.final).toMatchObject({ code: 503, details: { reason: "ovoc-auth", msg: expect.stringContaining("refused the credentials (HTTP 401)") } });
    for (const raw of orch.received.map((b) => b.toString("latin1"))) {
      expect(raw).not.toContain(WRONG);
      expect(raw).not.toContain(encodeURIComponent(WRONG));
    }
    expect(r.final.details.msg).not.toContain(WRONG);
    expect(rule(DEV)).toBeUndefined();
    await a.stop();
    secretsAbsent(a, WRONG);
  });

  it("unreachable: 503 reason=ovoc-unreachable", async () => {
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
    const port = (srv.address() as { port: number }).port;
    await new Promise<void>((r) => srv.close(() => r()));
    const a = await agent(["--key-file", keyFile, "--ovoc-url", `https://127.0.0.1:${port}`, "--ovoc-credentials", credFile]);
    const r = await (await peer()).request(a.port, { verb: "REGISTER", device: DEV });
    expect(r.final).toMatchObject({ code: 503, details: { reason: "ovoc-unreachable", msg: expect.stringContaining("ECONNREFUSED") } });
    secretsAbsent(a, PASSWORD);
  });

  it("refuses credentials on the command line and a credentials file others can read (exit 2)", async () => {
    const loose = join(work, "loose.cred");
    writeFileSync(loose, `${USER}:${PASSWORD}\n`);
    chmodSync(loose, 0o644);
    await expect(agent(["--key-file", keyFile, "--ovoc-url", `https://${USER}:pw@127.0.0.1:1`])).rejects.toThrow(/exited with 2: .*--ovoc-url must not contain credentials/);
    await expect(agent(["--key-file", keyFile, "--ovoc-url", ovoc.baseUrl, "--ovoc-credentials", loose])).rejects.toThrow(/exited with 2: .*mode 0644 lets group\/others read it/);
    await expect(agent(["--key-file", keyFile, "--ovoc-url", ovoc.baseUrl])).rejects.toThrow(/exited with 2: .*needs the API account/);
  });
});

describe("legacy REGISTER (the original's single UDP port for answers and alarms)", () => {
  it("answers exactly '200 OK <dev> REGISTER' once the rule exists; the alarm reaches the same socket; idle and shutdown delete the rule", async () => {
    const a = await agent(["--legacy", "--ovoc-url", ovoc.baseUrl, "--ovoc-ca", caFile, "--ovoc-credentials", credFile, "--register-idle", "2s"]);
    const cpe = await peer();
    cpe.send(`REGISTER ${LEG}`, a.port);
    await cpe.waitFor((all) => (all.length ? true : undefined));
    expect(cpe.received.map((b) => b.toString("latin1"))).toEqual([`200 OK ${LEG} REGISTER`]);
    expect(rule(LEG)).toMatchObject({ destSyslog: { syslogServerIP: "127.0.0.1", syslogServerPort: cpe.socket.address().port }, alarmDevicesFilter: [deviceId(LEG)] });

    await ovoc.raiseConnectionLost(LEG, { at: AT });
    const alarm = await cpe.waitFor(syslogOf);
    expect(alarm).toEqual(ovocConnectionLostAlarm({ deviceIp: LEG, deviceName: "msbr-23", deviceType: "MSBR", timestamp: AT }));

    cpe.send("REGISTER 127.0.0.98", a.port);
    await cpe.waitFor((all) => all.find((b) => b.toString().startsWith("503")));
    expect(cpe.received.at(-1)!.toString("latin1")).toBe("503 Service Unavailable 127.0.0.98 REGISTER");

    // --register-idle 2s: no CAPTURE/STOP, so the rule goes by itself.
    await expect.poll(() => rule(LEG), { timeout: 6000, interval: 200 }).toBeUndefined();
    expect(state(a).devices.find((d) => d.device === LEG)!.tasks.at(-1)).toMatchObject({ task: "unregister", status: "ok" });

    // Registered again, then the agent is stopped: its rule goes with it.
    cpe.send(`REGISTER ${LEG}`, a.port);
    await expect.poll(() => rule(LEG), { timeout: 5000 }).toBeDefined();
    expect(await a.stop(), a.stderr()).toBe(0);
    expect(rule(LEG)).toBeUndefined();
    expect(ovoc.rules().map((r) => r.name)).toContain("NOC syslog");
    secretsAbsent(a, PASSWORD);
  });
});

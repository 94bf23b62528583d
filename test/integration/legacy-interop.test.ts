// Interop with the original trafficCapture v1.0.6 peers, byte for byte, from golden exchanges taken from
// their published code (cpe_capture_app.py / ovoc_capture_app.py):
//  1. an original cpe_capture_app talking to our agent (`server-capture --legacy`): the exact request
//     datagrams it sends, the exact answers it expects, parsed with its own response regex; and its
//     single UDP port receiving both the answers and OVOC's forwarded alarm;
//  2. our orchestrator's legacy AgentClient talking to a tiny fake that answers exactly like the original
//     ovoc_capture_app (no 100 for REGISTER, 404 for unregistered devices, one message at a time).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import dgram from "node:dgram";
import { existsSync, writeFileSync, chmodSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { join } from "node:path";
import { LEGACY_VERBS, REASON_PHRASES, formatLegacyAnswer, type Code } from "@capsync/protocol";
import { ovocConnectionLostAlarm, startOvocEmulator, type OvocEmulator } from "@capsync/emulators";
import { AgentClient } from "@capsync/cpe-capture/agents/client";
import { SyslogListener } from "@capsync/cpe-capture/triggers/listener";
import type { SyslogEvent } from "@capsync/cpe-capture/triggers/matchers";
import { TestPeer, startAgent, tempDir, type AgentProc } from "../helpers/agent-proc.js";
import { tcpdumpsFor } from "../helpers/procs.js";

const USER = "ovoc-operator";
const PASSWORD = "Op3rator:pw";
const DEV = "127.0.0.51";
const AT = new Date("2026-11-23T10:00:00.000Z");
/** cpe_capture_app's capture file name: 'CPE_device_<ip>_<%Y-%m-%dT%H.%M.%S.%f>.pcap' (':' → '.'). */
const CPE_FILE = `CPE_device_${DEV}_2026-11-23T10.00.00.123456.pcap`;

// --- the original cpe_capture_app's parse_message, as data ---------------------------------------
/** Its response regex, verbatim (re.search). */
const ORIGINAL_RESPONSE = /(\d+\s+[\w\s]+)\s+([0-9a-fA-F:.]+)\s+(.*)$/;

type Parsed =
  | { type: "response"; response: string; device: string; request: string }
  | { type: "alarm"; alarmType: string; alarm: string; alarmSource: string; ipAddress: string }
  | { type: "unknown" };

/** What cpe_capture_app makes of a datagram: message.decode('utf-8').rstrip('\x00'), alarm first, then `^\d+\s+\w+`. */
function originalParse(buf: Buffer): Parsed {
  const message = buf.toString("utf8").replace(/\0+$/, "");
  if (/New Alarm -/.test(message)) {
    const g = (re: RegExp) => re.exec(message)?.[1]?.trim() ?? "";
    return { type: "alarm", alarmType: g(/New Alarm\s*-\s*(.*?),/), alarmSource: g(/\s*Source:(.*?),/), alarm: g(/,\s*Description:(.*?),/), ipAddress: g(/,\s*IP Address:(.*?),/) };
  }
  if (/^\d+\s+\w+/.test(message)) {
    const m = ORIGINAL_RESPONSE.exec(message);
    return { type: "response", response: m?.[1]?.trim() ?? "", device: m?.[2]?.trim() ?? "", request: m?.[3]?.trim() ?? "" };
  }
  return { type: "unknown" };
}

// --- golden exchanges: what the original cpe_capture_app sends, and every answer it expects ---------
// Requests are 'VERB {}'.format(device) (STOP adds the CPE file name), .encode() to UTF-8, one per datagram.
const TO_AGENT: Array<{ name: string; send: string; expect: string[] }> = [
  { name: "REGISTER (OVOC manages the device)", send: `REGISTER ${DEV}`, expect: [`200 OK ${DEV} REGISTER`] },
  { name: "CAPTURE", send: `CAPTURE ${DEV}`, expect: [`100 Trying ${DEV} CAPTURE`, `200 OK ${DEV} CAPTURE`] },
  { name: "VERIFY (the device refuses TCP/443: packets crossed)", send: `VERIFY ${DEV}`, expect: [`100 Trying ${DEV} VERIFY`, `200 OK ${DEV} VERIFY`] },
  { name: "STOP with the CPE file name", send: `STOP ${DEV} ${CPE_FILE}`, expect: [`100 Trying ${DEV} STOP`, `200 OK ${DEV} STOP`] },
  { name: "STOP of a device with no capture (no 100 first)", send: `STOP 127.0.0.59 CPE_device_127.0.0.59_2026-11-23T10.00.00.123456.pcap`, expect: ["404 Not Found 127.0.0.59 STOP"] },
  { name: "REGISTER of a device OVOC does not manage", send: "REGISTER 127.0.0.58", expect: ["503 Service Unavailable 127.0.0.58 REGISTER"] },
];

/** The device record cpe_capture_app's main loop keeps, and how it changes it for each answer or alarm. */
interface OriginalDevice {
  device: string;
  registration: "active" | "not active";
  ovocCapture: "active" | "not active";
  cpeEvent: "active" | "not active";
  awaitingResponse: boolean;
}
function originalActsOn(d: OriginalDevice, p: Parsed): void {
  if (p.type === "alarm") {
    if (p.alarmType.toLowerCase() === "connection alarm" && p.alarm.toLowerCase() === "connection lost" && p.ipAddress === d.device) d.cpeEvent = "active";
    return;
  }
  if (p.type !== "response" || p.device !== d.device) return;
  if (p.response !== "100 Trying") d.awaitingResponse = false;
  if (p.response === "200 OK" && p.request === "REGISTER") d.registration = "active";
  if (p.response === "200 OK" && p.request === "CAPTURE") d.ovocCapture = "active";
  if (p.response === "200 OK" && p.request === "STOP") d.ovocCapture = "not active";
}

let ovoc: OvocEmulator;
let agent: AgentProc;

beforeAll(async () => {
  ovoc = await startOvocEmulator({ username: USER, password: PASSWORD, devices: [{ ipAddress: DEV, name: "msbr-51" }] });
  const work = tempDir("capsync-interop-");
  const ca = join(work, "ovoc-ca.pem");
  writeFileSync(ca, ovoc.certificate);
  const cred = join(work, "ovoc.cred");
  writeFileSync(cred, `${USER}:${PASSWORD}\n`);
  chmodSync(cred, 0o600);
  agent = await startAgent(["--legacy", "--interface", "lo", "--ovoc-url", ovoc.baseUrl, "--ovoc-ca", ca, "--ovoc-credentials", cred]);
});

afterAll(async () => {
  await agent?.stop();
  await ovoc?.close();
});

describe("original cpe_capture_app → server-capture --legacy", () => {
  it("every answer the agent can give in legacy mode parses with the original's regex into (response, device, request)", () => {
    for (const code of Object.keys(REASON_PHRASES).map(Number) as Code[]) {
      for (const verb of LEGACY_VERBS) {
        for (const device of ["192.0.2.10", "10.0.0.1", "2001:db8::a", "fe80::1"]) {
          const buf = formatLegacyAnswer({ code, verb, device });
          expect(originalParse(buf)).toEqual({ type: "response", response: `${code} ${REASON_PHRASES[code]}`, device, request: verb });
        }
      }
    }
  });

  it("golden exchange: REGISTER, CAPTURE, the forwarded alarm on the same port, VERIFY, STOP, 404 and 503 — byte for byte", async () => {
    // The original binds one UDP socket (0.0.0.0:20001 by default) for requests, answers and OVOC's alarms.
    const cpe = await TestPeer.open();
    const rec: OriginalDevice = { device: DEV, registration: "not active", ovocCapture: "not active", cpeEvent: "not active", awaitingResponse: false };
    try {
      const exchange = async (send: string, n: number) => {
        const before = cpe.received.length;
        cpe.send(Buffer.from(send, "utf8"), agent.port);
        await cpe.waitFor((all) => (all.length - before >= n ? true : undefined), 15_000);
        await new Promise((r) => setTimeout(r, 100)); // nothing more may follow
        return cpe.received.slice(before);
      };
      for (const g of TO_AGENT) {
        const got = await exchange(g.send, g.expect.length);
        expect(got.map((b) => b.toString("latin1")), g.name).toEqual(g.expect);
        for (const b of got) {
          const p = originalParse(b);
          expect(p.type, g.name).toBe("response");
          if (p.type === "response") {
            expect(p.device).toBe(g.send.split(" ")[1]);
            expect(p.request).toBe(g.send.split(" ")[0]);
          }
        }
        if (g.send.split(" ")[1] === DEV) {
          rec.awaitingResponse = true;
          for (const b of got) originalActsOn(rec, originalParse(b));
          expect(rec.awaitingResponse, `${g.name}: the original would still wait`).toBe(false);
        }

        if (g.send.startsWith("REGISTER") && g.expect[0]!.startsWith("200")) {
          // REGISTER made OVOC forward this device's Connection Lost to the original's one port.
          expect(ovoc.rules()).toEqual([expect.objectContaining({ name: `capsync-${DEV}`, destSyslog: { syslogServerIP: "127.0.0.1", syslogServerPort: cpe.socket.address().port } })]);
        }
        if (g.send.startsWith("CAPTURE")) {
          expect(tcpdumpsFor(DEV)).toHaveLength(1);
          expect(rec).toMatchObject({ registration: "active", ovocCapture: "active", cpeEvent: "not active" });
          const before = cpe.received.length;
          await ovoc.raiseConnectionLost(DEV, { at: AT });
          const alarm = await cpe.waitFor((all) => all.slice(before).find((b) => b[0] === 0x3c));
          expect(alarm).toEqual(ovocConnectionLostAlarm({ deviceIp: DEV, deviceName: "msbr-51", deviceType: "MSBR", timestamp: AT }));
          // main(): alarmType.lower() == 'connection alarm' and alarm.lower() == 'connection lost' → that device's event.
          expect(originalParse(alarm)).toEqual({ type: "alarm", alarmType: "Connection Alarm", alarmSource: "Board#1", alarm: "Connection Lost", ipAddress: DEV });
          originalActsOn(rec, originalParse(alarm));
          expect(rec.cpeEvent).toBe("active");
        }
      }
      expect(rec).toMatchObject({ registration: "active", ovocCapture: "not active", cpeEvent: "active" });
      // STOP renamed the capture to match the CPE file; the rule went with the capture.
      expect(existsSync(join(agent.dir, CPE_FILE.replace(/^CPE_/, "OVOC_").replace(/\.pcap$/, "-0.pcap")))).toBe(true);
      await expect.poll(() => ovoc.rules(), { timeout: 5000 }).toEqual([]);
    } finally {
      cpe.close();
    }
  });

  it("ignores what the original would never send (junk, lower case, missing device) without answering", async () => {
    const cpe = await TestPeer.open();
    try {
      for (const junk of ["", "register 127.0.0.51", "CAPTURE", "STOP 127.0.0.51", "HELLO 127.0.0.51"]) cpe.send(junk, agent.port);
      cpe.send(`REGISTER ${DEV}\0\0`, agent.port); // trailing NULs are ignored, as the original's rstrip('\x00')
      await cpe.waitFor((all) => (all.length ? true : undefined));
      await new Promise((r) => setTimeout(r, 200));
      expect(cpe.received.map((b) => b.toString("latin1"))).toEqual([`200 OK ${DEV} REGISTER`]);
    } finally {
      cpe.close();
    }
  });
});

// --- a tiny original ovoc_capture_app ---------------------------------------------------------------
interface FakeOriginal {
  port: number;
  received: string[];
  close(): void;
}

/**
 * Answers like ovoc_capture_app.py v1.0.6: a blocking loop over one UDP socket (one message at a time),
 * REGISTER answered only after its OVOC rule calls ('200 OK <dev> REGISTER', never a 100), CAPTURE/VERIFY/
 * STOP with '100 Trying <dev> <VERB>' then the result, '404 Not Found <dev> <VERB>' for a device that never
 * registered. On REGISTER it makes the rule the original makes ('Forward Connection Lost from <dev>') to
 * the address:port the REGISTER came from.
 */
async function fakeOriginalOvocApp(o: { registerMs: number; work: (verb: string) => number; ovoc: OvocEmulator }): Promise<FakeOriginal> {
  const sock = dgram.createSocket("udp4");
  await new Promise<void>((r) => sock.bind(0, "127.0.0.1", () => r()));
  const received: string[] = [];
  const devices = new Set<string>();
  const withRule = new Set<string>();
  const queue: Array<{ msg: Buffer; from: dgram.RemoteInfo }> = [];
  let busy = false;
  const reply = (text: string, to: dgram.RemoteInfo) => sock.send(Buffer.from(text, "utf8"), to.port, to.address);
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const process1 = async ({ msg, from }: { msg: Buffer; from: dgram.RemoteInfo }) => {
    const message = msg.toString("utf8").replace(/\0+$/, "");
    received.push(message);
    let m: RegExpExecArray | null;
    if (/^REGISTER/.test(message) && (m = /(REGISTER)\s+(.*$)/.exec(message))) {
      const device = m[2]!.trim();
      devices.add(device);
      await sleep(o.registerMs);
      // A later REGISTER finds the rule by name and PUTs the new destination; the emulator test covers that call.
      const ok = withRule.has(device) || (await createOriginalRule(o.ovoc, device, from));
      if (ok) withRule.add(device);
      reply(`${ok ? "200 OK" : "503 Service Unavailable"} ${device} REGISTER`, from);
    } else if (/^(CAPTURE|VERIFY)/.test(message) && (m = /(CAPTURE|VERIFY)\s+(.*$)/.exec(message))) {
      const [verb, device] = [m[1]!, m[2]!.trim()];
      if (!devices.has(device)) return reply(`404 Not Found ${device} ${verb}`, from);
      reply(`100 Trying ${device} ${verb}`, from);
      await sleep(o.work(verb));
      reply(`200 OK ${device} ${verb}`, from);
    } else if (/^STOP/.test(message) && (m = /(STOP)\s+(.*?)\s+(.*$)/.exec(message))) {
      const device = m[2]!.trim();
      if (!devices.has(device)) return reply(`404 Not Found ${device} STOP`, from);
      reply(`100 Trying ${device} STOP`, from);
      await sleep(o.work("STOP"));
      reply(`200 OK ${device} STOP`, from);
    }
    // anything else: logged as unknown by the original, never answered
  };
  sock.on("message", (msg, from) => {
    queue.push({ msg, from });
    if (busy) return;
    busy = true;
    void (async () => {
      while (queue.length) await process1(queue.shift()!);
      busy = false;
    })();
  });
  return { port: sock.address().port, received, close: () => sock.close() };
}

/** create_fwd_rule's POST, body and all, to the emulator. */
function createOriginalRule(ovoc: OvocEmulator, device: string, to: { address: string; port: number }): Promise<boolean> {
  const body = JSON.stringify(
    {
      ruleDestType: "SYSLOG",
      destSyslog: { syslogServerIP: to.address, syslogServerPort: to.port },
      forwardType: "ALLOW",
      name: `Forward Connection Lost from ${device}`,
      tenantId: -1,
      alarmTenantsFilter: [],
      alarmRegionsFilter: [],
      alarmEndpointsFilter: [],
      alarmSitesFilter: [],
      alarmDevicesFilter: [ovoc.devices().find((d) => d.ipAddress === device)?.id ?? -1],
      alarmNamesFilter: ["acEMSNodeConnectionLostAlarm"],
    },
    null,
    4,
  );
  return new Promise((resolve) => {
    const req = httpsRequest(
      {
        host: ovoc.address,
        port: ovoc.port,
        method: "POST",
        path: "/ovoc/v1/alarms/fwdRules",
        ca: ovoc.certificate,
        headers: { authorization: `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString("base64")}`, "content-type": "application/json", "content-length": Buffer.byteLength(body) },
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode === 201));
      },
    );
    req.on("error", () => resolve(false));
    req.end(body);
  });
}

describe("cpe-capture's legacy agent client → original ovoc_capture_app", () => {
  const DEVICE = "192.0.2.61";
  let ovoc2: OvocEmulator;
  let fake: FakeOriginal;
  let client: AgentClient;
  const events: SyslogEvent[] = [];
  let listener: SyslogListener;

  beforeAll(async () => {
    ovoc2 = await startOvocEmulator({ username: USER, password: PASSWORD, devices: [{ ipAddress: DEVICE, name: "msbr-61" }] });
    // REGISTER takes the original 600 ms (its OVOC REST calls): longer than the client's first resends.
    fake = await fakeOriginalOvocApp({ registerMs: 600, work: (v) => (v === "CAPTURE" ? 150 : 50), ovoc: ovoc2 });
    listener = new SyslogListener({ onEvent: (e) => events.push(e), udp: false, devices: [DEVICE] });
    // The original's one port for answers and alarms: sharePortWithAgents.
    client = await AgentClient.open({ mode: "legacy", bind: { address: "127.0.0.1", port: 0 }, onForeignDatagram: (buf, rinfo) => listener.handleDatagram(buf, rinfo) });
  });
  afterAll(async () => {
    client?.close();
    fake?.close();
    await listener?.close();
    await ovoc2?.close();
  });

  it("sends the original's exact requests and reads its answers, including the REGISTER that never says 100", async () => {
    const to = { host: "127.0.0.1", port: fake.port };
    const capBefore = await client.request(to, { verb: "CAPTURE", device: DEVICE });
    expect(capBefore).toMatchObject({ code: 404, verb: "CAPTURE", device: DEVICE, trying: false });

    const reg = await client.request(to, { verb: "REGISTER", device: DEVICE });
    expect(reg).toMatchObject({ code: 200, verb: "REGISTER", device: DEVICE, trying: false });
    expect(reg.tries).toBeGreaterThan(1); // resent while the original was busy with OVOC; duplicates answered later are harmless

    const cap = await client.request(to, { verb: "CAPTURE", device: DEVICE });
    expect(cap).toMatchObject({ code: 200, trying: true });
    const ver = await client.request(to, { verb: "VERIFY", device: DEVICE });
    expect(ver).toMatchObject({ code: 200, trying: true });

    // The original's rule sends OVOC's alarm to the client's port; the shared port hands it to the syslog listener.
    expect(ovoc2.rules()[0]).toMatchObject({ name: `Forward Connection Lost from ${DEVICE}`, destSyslog: { syslogServerPort: client.localAddress(4)!.port } });
    await ovoc2.raiseConnectionLost(DEVICE, { at: AT });
    await expect.poll(() => events.find((e) => e.kind === "stop")).toMatchObject({ kind: "stop", device: DEVICE, via: "alarm" });

    const stop = await client.request(to, { verb: "STOP", device: DEVICE, filename: `CPE_device_${DEVICE}_2026-11-23T10.00.00.123456.pcap` });
    expect(stop).toMatchObject({ code: 200, verb: "STOP", trying: true, tries: 1 });
    const stop404 = await client.request(to, { verb: "STOP", device: "192.0.2.62", filename: "CPE_device_192.0.2.62_2026-11-23T10.00.00.123456.pcap" });
    expect(stop404).toMatchObject({ code: 404, device: "192.0.2.62" });

    // Exactly the original's request strings, one per datagram; every REGISTER resend byte-identical.
    const distinct = [...new Set(fake.received)];
    expect(distinct).toEqual([
      `CAPTURE ${DEVICE}`,
      `REGISTER ${DEVICE}`,
      `VERIFY ${DEVICE}`,
      `STOP ${DEVICE} CPE_device_${DEVICE}_2026-11-23T10.00.00.123456.pcap`,
      `STOP 192.0.2.62 CPE_device_192.0.2.62_2026-11-23T10.00.00.123456.pcap`,
    ]);
    expect(fake.received.filter((r) => r === `REGISTER ${DEVICE}`)).toHaveLength(reg.tries);
    expect(fake.received.filter((r) => r.startsWith("CAPTURE")).length).toBeGreaterThanOrEqual(2);
    // The original's regexes take the device (and STOP's file name) out of our requests unchanged.
    for (const r of distinct) {
      const m = /^STOP/.test(r) ? /(STOP)\s+(.*?)\s+(.*$)/.exec(r) : /(REGISTER|CAPTURE|VERIFY)\s+(.*$)/.exec(r);
      expect(m?.[2]?.trim()).toMatch(/^192\.0\.2\.6[12]$/);
    }
    expect(client.stats().timeouts).toBe(0);
  });
});
